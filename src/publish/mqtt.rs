//! The rumqttc glue: the only part of [`crate::publish`] that touches the network.
//!
//! One task polls the event loop (rumqttc's `poll` reconnects at once on error, so the
//! backoff is ours); the publisher task turns readings into messages with the [`Policy`] and
//! reacts to every ConnAck (online, discovery, subscription) and to Home Assistant's
//! `online` status by announcing again.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, LastWill, MqttOptions, NetworkOptions, Outgoing, Packet,
    QoS, TlsConfiguration, Transport,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Message;
use super::discovery;
use super::policy::{Diag, Extras, Policy};
use super::topics::Topics;
use crate::meter::{MeterStats, Reading};
use crate::source::Backoff;
use crate::tic::Stats;

/// How to reach the broker and name things on it.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password, if the broker wants one.
    pub password: Option<crate::config::Secret>,
    /// The rustls configuration when `mqtt.tls` is on; see [`super::tls`].
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Client id; `linkymon-<meter id>` when not set.
    pub client_id: Option<String>,
    /// `mqtt.base_topic`.
    pub base_topic: String,
    /// Whether to publish Home Assistant discovery.
    pub discovery: bool,
    /// Home Assistant's discovery prefix.
    pub discovery_prefix: String,
    /// `publish.interval`.
    pub interval: Duration,
    /// `relay.gpio` is set: announce and publish the relay contact.
    pub relay: bool,
}

/// One decoded frame on its way to the broker, with what the shell measured.
#[derive(Debug, Clone)]
pub struct Published {
    /// The typed frame.
    pub reading: Arc<Reading>,
    /// When its last byte arrived, ISO 8601 with the local offset.
    pub ts: String,
    /// The same instant in seconds since the daemon started.
    pub at: f64,
    /// Active power estimate, when known.
    pub power_w: Option<i64>,
    /// Decoder counters at that frame.
    pub tic: Stats,
    /// Meter-model counters at that frame.
    pub meter: MeterStats,
    /// The line's mode.
    pub mode: &'static str,
    /// Frames the acquisition loop could not hand to the publisher so far (it was waiting
    /// for a slow or absent broker).
    pub frames_not_published: u64,
}

enum LinkEvent {
    Connected,
    HomeAssistantOnline,
    Disconnected,
}

/// Publishes readings until `readings` closes (the source ended) or `shutdown` fires; then
/// says `offline`, disconnects and returns. A broker that is unreachable never stops it.
pub async fn publish(
    settings: MqttSettings,
    mut readings: mpsc::Receiver<Published>,
    mut relay: tokio::sync::watch::Receiver<Option<bool>>,
    shutdown: CancellationToken,
) {
    let started = tokio::time::Instant::now();
    // The Last Will names the meter, so the connection waits for the first frame's id.
    let first = tokio::select! {
        first = next_with_id(&mut readings) => first,
        () = shutdown.cancelled() => None,
    };
    let Some(first) = first else { return };
    let Some(id) = first.reading.meter.clone() else {
        return;
    };
    let topics = Topics::new(&settings.base_topic, &id);
    let mut options = MqttOptions::new(
        settings
            .client_id
            .clone()
            .unwrap_or_else(|| format!("linkymon-{id}")),
        settings.host.clone(),
        settings.port,
    );
    options.set_keep_alive(Duration::from_secs(30));
    options.set_last_will(LastWill::new(
        topics.availability(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    options.set_max_packet_size(64 * 1024, 64 * 1024);
    if let Some(tls) = &settings.tls {
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    if let Some(user) = &settings.username {
        options.set_credentials(
            user.clone(),
            settings
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default(),
        );
    }
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    // Without TCP_NODELAY, Nagle's algorithm and the broker's delayed ACK hold small
    // messages for ~40 ms: the state of a frame would reach Home Assistant late.
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let status_topic = format!("{}/status", settings.discovery_prefix);
    // Unbounded: the poller must never wait on the publisher, which may be waiting on it.
    // It only carries connection changes and Home Assistant restarts.
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let poller = tokio::spawn(poll(
        eventloop,
        status_topic.clone(),
        events_tx,
        settings.clone(),
    ));

    let mut policy = Policy::new(topics.clone(), settings.interval.as_secs_f64());
    let mut announcer = Announcer::new(&settings);
    announcer.learn(&first.reading);
    let mut last = first;
    let first_messages = policy.on_reading(
        &last.reading,
        &last.ts,
        last.at,
        Extras {
            power_w: last.power_w,
        },
    );
    send_all(&client, first_messages, &shutdown).await;
    let mut diag_tick =
        tokio::time::interval_at(started + Duration::from_secs(60), Duration::from_secs(60));
    let mut connected_once = false;
    let mut source_ended = false;
    let mut relay_open = true;
    let give_up = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(give_up);
    loop {
        tokio::select! {
            next = readings.recv(), if !source_ended => match next {
                Some(p) => {
                    if announcer.learn(&p.reading) && settings.discovery && connected_once {
                        send_all(&client, announcer.changed(&p.reading), &shutdown).await;
                    }
                    let messages = policy.on_reading(&p.reading, &p.ts, p.at, Extras { power_w: p.power_w });
                    send_all(&client, messages, &shutdown).await;
                    last = p;
                }
                // A replay ended: what is queued still needs the connection's ConnAck
                // (online, discovery) before saying offline, unless the broker stays away.
                None if connected_once => break,
                None => {
                    source_ended = true;
                    give_up.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(5));
                }
            },
            () = &mut give_up, if source_ended => break,
            changed = relay.changed(), if relay_open => match changed {
                Ok(()) => {
                    let closed = *relay.borrow_and_update();
                    if let Some(closed) = closed {
                        send_all(&client, vec![super::relay_message(&topics, closed)], &shutdown).await;
                    }
                }
                Err(_) => relay_open = false,
            },
            Some(event) = events.recv() => match event {
                LinkEvent::Connected => {
                    if connected_once {
                        policy.forget(); // the broker may have lost retained values
                    }
                    connected_once = true;
                    let mut messages = vec![Message::new(topics.availability(), "online", true, 1)];
                    if settings.discovery {
                        messages.extend(announcer.all(&last.reading));
                    }
                    let relay_closed = *relay.borrow();
                    if let Some(closed) = relay_closed {
                        messages.push(super::relay_message(&topics, closed));
                    }
                    send_all(&client, messages, &shutdown).await;
                    if let Err(e) = client.try_subscribe(status_topic.clone(), QoS::AtLeastOnce) {
                        warn!("cannot subscribe to {status_topic}: {e}");
                    }
                    if source_ended {
                        break;
                    }
                }
                LinkEvent::HomeAssistantOnline if settings.discovery => {
                    send_all(&client, announcer.all(&last.reading), &shutdown).await;
                }
                LinkEvent::HomeAssistantOnline | LinkEvent::Disconnected => {}
            },
            _ = diag_tick.tick() => {
                let diag = Diag {
                    tic: last.tic,
                    meter: last.meter,
                    mode: last.mode,
                    uptime_s: started.elapsed().as_secs(),
                    frames_not_published: last.frames_not_published,
                };
                send_all(&client, vec![policy.diag(&diag)], &shutdown).await;
            }
            () = shutdown.cancelled() => break,
        }
    }
    // Stopping: the shutdown token has fired, so wait on a fresh one, briefly. If `offline`
    // cannot even be queued, no DISCONNECT is sent and the broker publishes the Last Will.
    let offline = vec![Message::new(topics.availability(), "offline", true, 1)];
    if tokio::time::timeout(
        Duration::from_secs(1),
        send_all(&client, offline, &CancellationToken::new()),
    )
    .await
    .is_ok()
    {
        let _ = client.try_disconnect();
    }
    finish(poller).await;
}

/// Gives the event loop a moment to write what is queued and the DISCONNECT.
async fn finish(poller: JoinHandle<()>) {
    if tokio::time::timeout(Duration::from_secs(2), poller)
        .await
        .is_err()
    {
        warn!("the broker did not take the last messages within 2 s");
    }
}

async fn next_with_id(readings: &mut mpsc::Receiver<Published>) -> Option<Published> {
    while let Some(p) = readings.recv().await {
        if p.reading.meter.is_some() {
            return Some(p);
        }
    }
    None
}

/// What Home Assistant has been told about this meter: discovery is re-sent whole on every
/// ConnAck and `online` status, and for new labels (PEJP, ADPS come and go) as they appear.
struct Announcer {
    context: discovery::Context,
    labels: BTreeSet<String>,
    sent: HashMap<String, String>,
}

impl Announcer {
    fn new(settings: &MqttSettings) -> Self {
        Announcer {
            context: discovery::Context::new(&settings.base_topic, &settings.discovery_prefix)
                .with_relay(settings.relay),
            labels: BTreeSet::new(),
            sent: HashMap::new(),
        }
    }

    /// Remembers the reading's labels; true when one is new.
    fn learn(&mut self, reading: &Reading) -> bool {
        let mut new = false;
        for e in &reading.entries {
            if !self.labels.contains(&e.label) {
                self.labels.insert(e.label.clone());
                new = true;
            }
        }
        new
    }

    fn configs(&self, reading: &Reading) -> Vec<Message> {
        let Some(id) = reading.meter.as_deref() else {
            return Vec::new();
        };
        let contract = discovery::Contract::from_reading(reading);
        discovery::config_messages(id, reading.mode, &contract, &self.labels, &self.context)
    }

    /// Every config, for a new connection or a Home Assistant restart.
    fn all(&mut self, reading: &Reading) -> Vec<Message> {
        let configs = self.configs(reading);
        self.sent = configs
            .iter()
            .map(|m| (m.topic.clone(), m.payload.clone()))
            .collect();
        configs
    }

    /// Only the configs that are new or changed since the last announcement.
    fn changed(&mut self, reading: &Reading) -> Vec<Message> {
        let mut configs = self.configs(reading);
        configs.retain(|m| self.sent.get(&m.topic) != Some(&m.payload));
        for m in &configs {
            self.sent.insert(m.topic.clone(), m.payload.clone());
        }
        configs
    }
}

/// Queues messages for the event loop, waiting while its queue is full (the broker is slow
/// or away) unless the daemon is stopping. While it waits, the acquisition loop keeps
/// reading the meter and counts the frames it could not hand over.
async fn send_all(client: &AsyncClient, messages: Vec<Message>, shutdown: &CancellationToken) {
    for m in messages {
        let qos = if m.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        tokio::select! {
            sent = client.publish(m.topic, qos, m.retain, m.payload) => {
                if sent.is_err() {
                    return; // the event loop is gone: the daemon is stopping
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// Drives the connection: reconnects with backoff and reports what the publisher acts on.
async fn poll(
    mut eventloop: rumqttc::EventLoop,
    status_topic: String,
    events: mpsc::UnboundedSender<LinkEvent>,
    settings: MqttSettings,
) {
    let mut backoff = Backoff::default();
    let mut down_logged = false;
    let broker = format!("{}:{}", settings.host, settings.port);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                info!(%broker, "connected to the MQTT broker");
                down_logged = false;
                let _ = events.send(LinkEvent::Connected);
            }
            Ok(Event::Incoming(Packet::Publish(p))) if p.topic == status_topic => {
                if p.payload.as_ref() == b"online" {
                    let _ = events.send(LinkEvent::HomeAssistantOnline);
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                // Read until the broker closes the connection: closing a socket with unread
                // acknowledgements in it sends a reset, and the broker may then drop the
                // last messages (`offline` among them) before it reads them.
                let drain = async { while eventloop.poll().await.is_ok() {} };
                let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                if !down_logged {
                    warn!(%broker, error = %describe(&e, settings.tls.is_some()), "no connection to the MQTT broker; retrying with backoff");
                    down_logged = true;
                    let _ = events.send(LinkEvent::Disconnected);
                }
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

/// The connection error in words that say what to fix. `tls` is whether `mqtt.tls` is on: a
/// connection reset at once usually means the two ends disagree about TLS.
fn describe(e: &ConnectionError, tls: bool) -> String {
    use rumqttc::ConnectReturnCode::{BadUserNamePassword, NotAuthorized};
    if let ConnectionError::ConnectionRefused(code) = e {
        return match code {
            BadUserNamePassword | NotAuthorized => format!(
                "the broker refused the login ({code:?}): check mqtt.username and mqtt.password"
            ),
            _ => format!("the broker refused the connection ({code:?})"),
        };
    }
    if let Some(rustls::Error::InvalidCertificate(why)) = find_rustls_error(e) {
        return format!(
            "the broker's TLS certificate is not trusted ({why:?}): set mqtt.ca_file to the CA \
             that signed it, and check that it names mqtt.host"
        );
    }
    if let Some(other) = find_rustls_error(e) {
        return format!("the TLS handshake failed: {other}");
    }
    let reset = find_io_error(e).is_some_and(|io| {
        matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
        )
    });
    match (reset, tls) {
        (true, true) => format!(
            "the broker closed the connection during the TLS handshake ({e}): is this port a \
             TLS listener? If not, set mqtt.tls: false or use the broker's TLS port"
        ),
        (true, false) => format!(
            "the broker closed the connection ({e}): if this port expects TLS, set mqtt.tls: true"
        ),
        (false, _) => e.to_string(),
    }
}

/// The rustls error behind a connection error, however deep rumqttc wrapped it (an I/O error
/// built from a rustls error keeps it in `get_ref`, not in `source`).
fn find_rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(inner);
        }
        next = e.source();
    }
    None
}

/// The innermost I/O error behind a connection error.
fn find_io_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a std::io::Error> {
    let mut found = None;
    let mut next = Some(e);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            found = Some(io);
        }
        next = e.source();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::ConnectReturnCode;

    #[test]
    fn a_refused_login_points_at_the_credentials() {
        let e = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        let message = describe(&e, true);
        assert!(message.contains("refused the login"), "{message}");
        assert!(message.contains("mqtt.password"), "{message}");
    }

    #[test]
    fn an_untrusted_certificate_points_at_the_ca_file() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, cert);
        let e = ConnectionError::Tls(rumqttc::TlsError::Io(io));
        let message = describe(&e, true);
        assert!(message.contains("not trusted (UnknownIssuer)"), "{message}");
        assert!(message.contains("mqtt.ca_file"), "{message}");
    }

    #[test]
    fn a_reset_during_the_handshake_asks_whether_the_port_speaks_tls() {
        let reset = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let e = ConnectionError::Tls(rumqttc::TlsError::Io(reset()));
        assert!(describe(&e, true).contains("is this port a TLS listener?"));
        let e = ConnectionError::Io(reset());
        assert!(describe(&e, false).contains("set mqtt.tls: true"));
    }
}
