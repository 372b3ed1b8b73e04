//! `linkymon demo`: the whole product on one machine, no meter, no broker, one Ctrl-C.
//!
//! A simulated EJP meter, the embedded broker, `run` with the `png` virtual screen and the
//! logger, all in this process. The logger still only speaks MQTT, so the demo shows exactly
//! what Home Assistant or Node-RED would see.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, DisplayDriver, PortSpec, PriceSet};

/// What the command line chose.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the logs, pages, screen and spool go.
    pub data: PathBuf,
    /// The embedded broker's port on 127.0.0.1.
    pub port: u16,
    /// Simulated seconds per real second.
    pub speed: f64,
}

/// The demo's configuration: built-in defaults with the demo's choices, never a file or the
/// environment, so that it behaves the same on every machine.
pub fn demo_config(options: &DemoOptions) -> Config {
    let mut config = Config::default();
    let data = &options.data;
    config.meter.port = PortSpec::Simulate;
    config.meter.simulate_speed = options.speed;
    config.mqtt.host = "127.0.0.1".to_owned();
    config.mqtt.port = options.port;
    config.mqtt.embedded_broker = true;
    config.mqtt.embedded_bind = "127.0.0.1".to_owned();
    config.mqtt.spool_dir = data.join("spool");
    // Every second, so that a log line (8 states) and the page come within seconds.
    config.publish.interval = Duration::from_secs(1);
    config.display.driver = DisplayDriver::Png;
    config.display.png_path = data.join("screen.png");
    config.logger.dir = data.join("logs");
    config.logger.pages_dir = data.join("pages");
    config.logger.pages_interval = Duration::from_secs(10);
    let kwh = [("hn".to_owned(), 0.1386), ("pm".to_owned(), 0.7524)].into();
    config.prices.sets = vec![PriceSet::always(kwh, None)];
    config
}

/// What the demo prints once, at start: where to look.
pub fn banner(config: &Config, today: &str) -> String {
    let page = config.logger.pages_dir.join(format!("{today}.html"));
    format!(
        "linkymon demo: a simulated EJP meter at {speed}× real time, an MQTT broker on 127.0.0.1:{port}.\n\
         \n  Watch the messages:  mosquitto_sub -h 127.0.0.1 -p {port} -t 'linky/#' -v\n  \
         Today's graph page:  {page}\n  The virtual screen:  {screen}\n\n\
         The notice comes after 30 simulated minutes, the EJP peak after an hour, solar injection \
         around midday. Ctrl-C stops everything.\n",
        speed = config.meter.simulate_speed,
        port = config.mqtt.port,
        page = absolute(&page).display(),
        screen = absolute(&config.display.png_path).display(),
    )
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}

/// Runs the daemon and the logger until `shutdown`; the first to fail stops the other.
pub async fn run(options: DemoOptions, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = demo_config(&options);
    std::fs::create_dir_all(&options.data).with_context(|| {
        format!(
            "cannot create the demo's data folder {} (--data)",
            options.data.display()
        )
    })?;
    // A clear word now rather than a broker error later.
    std::net::TcpListener::bind(("127.0.0.1", options.port)).with_context(|| {
        format!(
            "port {} on 127.0.0.1 is taken (another MQTT broker?): choose another with --port",
            options.port
        )
    })?;
    // The broker first, so that the daemon and the logger both find it at their first try.
    let mut config = config;
    let broker = crate::broker::start_configured(&mut config.mqtt).await?;
    config.mqtt.embedded_broker = false; // running here already
    let today = jiff::ZonedDateTime::now().strftime("%Y-%m-%d").to_string();
    print!("{}", banner(&config, &today));
    let stop = shutdown.child_token();
    let daemon = tokio::spawn(super::run::run(config.clone(), stop.clone()));
    let logger = tokio::spawn(super::logger::run(config, stop.clone()));
    let (daemon, logger) = tokio::join!(
        async {
            let r = daemon.await;
            stop.cancel();
            r
        },
        async {
            let r = logger.await;
            stop.cancel();
            r
        }
    );
    if let Some(broker) = broker {
        broker.stop().await;
    }
    daemon.context("the daemon failed")??;
    logger.context("the logger failed")??;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_needs_no_hardware_and_no_broker() {
        let options = DemoOptions {
            data: PathBuf::from("/tmp/d"),
            port: 18830,
            speed: 600.0,
        };
        let c = demo_config(&options);
        assert_eq!(c.meter.port, PortSpec::Simulate);
        assert!(c.mqtt.embedded_broker);
        assert_eq!((c.mqtt.host.as_str(), c.mqtt.port), ("127.0.0.1", 18830));
        assert_eq!(c.display.driver, DisplayDriver::Png);
        assert_eq!(c.led.gpio, None);
        assert!(c.logger.dir.starts_with("/tmp/d") && c.logger.pages_dir.starts_with("/tmp/d"));
    }

    #[test]
    fn the_banner_says_what_to_watch() {
        let options = DemoOptions {
            data: PathBuf::from("/tmp/d"),
            port: 1884,
            speed: 60.0,
        };
        let text = banner(&demo_config(&options), "2026-11-28");
        assert!(
            text.contains("mosquitto_sub -h 127.0.0.1 -p 1884 -t 'linky/#' -v"),
            "{text}"
        );
        assert!(text.contains("/tmp/d/pages/2026-11-28.html"), "{text}");
        assert!(text.contains("/tmp/d/screen.png"), "{text}");
    }
}
