//! `<base>/bridge/state`: whether linkymon runs, meter heard or not.
//!
//! The daemon's main connection carries the meter's Last Will (`<base>/<id>/availability
//! offline`) and is named after the meter (`linkymon-<id>`), so it can only open once the first
//! frame told the meter's id; one MQTT connection has one Will. So the bridge status has a
//! small connection of its own, opened at start before any frame:
//!
//! - Its Last Will is `offline` on `<base>/bridge/state`, retained at QoS 1: a daemon that dies
//!   (`kill -9`, a crash, a power cut once the broker's keep-alive runs out) is said `offline`
//!   by the broker.
//! - On every CONNACK it says `online`, retained at QoS 1; at a clean stop (SIGTERM, the end of
//!   a replay) it says `offline` and disconnects. It is started only once the configuration,
//!   the meter's port and the spool were found usable, so a configuration error never leaves
//!   `online` behind: the retained state stays the last run's `offline`.
//! - Its client id is `<mqtt.client_id>-bridge` when `mqtt.client_id` is set, otherwise
//!   [`default_client_id`]: `linkymon-bridge-<host>-<hash>`, where the hash is that of the host
//!   name, the base topic and the spool directory. So it never collides with a meter's
//!   connection (`linkymon-<digits>`), two daemons of one install (a consumer and a producer
//!   meter, each with its own spool) get two ids, and one daemon keeps the same id across
//!   restarts: a restarted daemon takes over its old connection (the broker drops it) rather
//!   than have that connection's Will say `offline` a keep-alive later, after the new `online`.
//!
//! `<base>/bridge/state` is one topic per base topic: daemons that share a base topic share it,
//! and it then says what the last one to change said. Give each its own `mqtt.base_topic` to
//! follow each one. With the embedded broker the bridge says `offline` before the broker stops.
//! The spool, the outbox and the `state` messages never go through this connection.

use std::path::Path;
use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::link::{self, Broker, Link, LinkEvent, Outages};
use super::topics::bridge_state;
use crate::source::Backoff;

/// How long `offline` and the DISCONNECT may take at a clean stop.
const CLOSING: Duration = Duration::from_secs(2);

/// The most bytes of the host name that go into the default client id.
const MAX_HOST: usize = 32;

/// The bridge status connection, running in a task of its own until [`Bridge::stop`].
pub struct Bridge {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Bridge {
    /// Starts connecting to `broker` as `client_id`, saying `online` on `<base>/bridge/state`
    /// at every connection, with `offline` as the Last Will. Needs a tokio runtime.
    /// Its failures are said through `outages`, once per outage with the meter's connection.
    pub fn start(broker: &Broker, outages: Outages, client_id: String, base_topic: &str) -> Self {
        let topic = bridge_state(base_topic);
        let mut options = link::options(broker, client_id);
        options.set_clean_session(true);
        options.set_last_will(LastWill::new(
            topic.clone(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(options, topic, broker.clone(), outages, stop.clone()));
        Bridge { stop, task }
    }

    /// Says `offline` (when connected) and disconnects; returns once that is done or after a
    /// couple of seconds. A broker that is not there gets nothing: its retained state is the
    /// Will or the last `offline` already.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// The bridge's client id when `mqtt.client_id` is not set: `linkymon-bridge-<host>-<hash>`,
/// stable across restarts, different for each daemon of an install (see the module's doc).
pub fn default_client_id(base_topic: &str, spool_dir: &Path) -> String {
    let host = host_name();
    let spool = std::path::absolute(spool_dir).unwrap_or_else(|_| spool_dir.to_path_buf());
    let mut hash = crc32fast::Hasher::new();
    for part in [
        host.as_bytes(),
        base_topic.as_bytes(),
        spool.as_os_str().as_encoded_bytes(),
    ] {
        hash.update(part);
        hash.update(&[0]);
    }
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(MAX_HOST)
        .collect();
    let host = if host.is_empty() { "host".into() } else { host };
    format!("linkymon-bridge-{host}-{:08x}", hash.finalize())
}

/// The bridge's client id: `<mqtt.client_id>-bridge` when it is set, so a user who names the
/// daemon's connection names this one too, otherwise [`default_client_id`].
pub fn client_id(configured: Option<&str>, base_topic: &str, spool_dir: &Path) -> String {
    configured.map_or_else(
        || default_client_id(base_topic, spool_dir),
        |id| format!("{id}-bridge"),
    )
}

/// This machine's name (Linux's), or empty when it cannot be read.
fn host_name() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// Keeps the connection up, with backoff, until `stop`; then says `offline`.
async fn run(
    options: MqttOptions,
    topic: String,
    broker: Broker,
    outages: Outages,
    stop: CancellationToken,
) {
    let mut backoff = Backoff::default();
    let mut link: Link<()> = Link::open(options.clone());
    let mut said_online = false;
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => break,
            event = link.next() => event,
        };
        match event {
            LinkEvent::Up => {
                backoff.reset();
                outages.up();
                let online =
                    link.publish(topic.clone(), QoS::AtLeastOnce, true, "online".into(), None);
                if online.is_ok() && !std::mem::replace(&mut said_online, true) {
                    info!(%topic, "online");
                }
            }
            LinkEvent::Progress(_) | LinkEvent::Message(_) => {}
            LinkEvent::Down(e) => {
                debug!(error = %e, "the bridge status connection is down");
                outages.down(&broker, &e);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(backoff.next_delay()) => {}
                }
                link = Link::open(options.clone());
            }
        }
    }
    if link.is_up()
        && link
            .publish(topic, QoS::AtLeastOnce, true, "offline".into(), None)
            .is_ok()
    {
        link.close(CLOSING, |()| {}).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_id_is_the_configured_ones_with_a_suffix_or_stable_per_daemon() {
        assert_eq!(
            client_id(Some("box1"), "linky", Path::new("/s")),
            "box1-bridge"
        );
        let a = client_id(None, "linky", Path::new("/var/lib/linkymon/spool"));
        assert!(a.starts_with("linkymon-bridge-"), "{a}");
        assert_eq!(
            a,
            client_id(None, "linky", Path::new("/var/lib/linkymon/spool"))
        );
        // A second daemon of the install (its own spool) or another base topic: another id.
        assert_ne!(
            a,
            client_id(None, "linky", Path::new("/var/lib/linkymon/spool2"))
        );
        assert_ne!(
            a,
            client_id(None, "linky2", Path::new("/var/lib/linkymon/spool"))
        );
        assert!(a.len() <= "linkymon-bridge-".len() + MAX_HOST + 9, "{a}");
    }
}
