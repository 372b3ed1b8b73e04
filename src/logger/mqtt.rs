//! The logger's MQTT connection, on rumqttc's MQTT 5 `AsyncClient` and `EventLoop`: a
//! persistent session that subscribes to the daemon's `state` messages and Home Assistant's
//! status, and publishes `today` and its discovery. The logger's loop sees it as
//! [`LinkEvent`]s; [`subscribe`] and [`send`] are all it asks of it.
//!
//! - **Nothing lost across restarts.** The session is persistent (fixed client id
//!   `linkymon-logger-<base>`, clean start off, a session that never expires: see
//!   [`SESSION_EXPIRY`]) and subscribes at QoS 1, so the broker keeps what comes while the
//!   logger is away (mosquitto keeps 1000 messages per client by default:
//!   `max_queued_messages` sets it).
//! - **Each message logged once around a stop.** See [`poll`].
//! - **One connection code with the daemon.** Host, port, credentials and TLS (`mqtt.tls`,
//!   `ca_file`, `client_cert`, `client_key`) come from [`Broker`], as the daemon's do, so a
//!   setting cannot apply to one process only. The daemon speaks MQTT 3.1.1; the logger
//!   speaks MQTT 5 for what follows.
//! - **No lock-out by a poison message.** The CONNECT says the largest packet the logger
//!   takes ([`MAX_INCOMING`], MQTT 5's Maximum Packet Size): the broker never sends it a
//!   bigger one, it drops such a message for this client (mosquitto logs it), so a retained
//!   or queued giant cannot end the connection at every reconnection. A message over
//!   [`super::checks::MAX_STATE_BYTES`] and under [`MAX_INCOMING`] is dropped unread and
//!   counted by the logbook. `state` is subscribed without its retained message (the daemon
//!   never retains a `state`): what anyone retains there is not read at all, and the logger
//!   drops it itself from a broker that ignores that option (rumqttd, the embedded broker).

use std::time::Duration;

use rumqttc::Outgoing;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Filter, Packet, Publish, RetainForwardRule};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, StateError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{ConfigError, LoggerConfig, MqttConfig};
use crate::publish::Message;
use crate::publish::diagnosis;
use crate::publish::link::{self, Broker};
use crate::source::Backoff;

/// The largest packet the logger takes, sent to the broker in the CONNECT: a `state` is under
/// 4 KiB, so this only bounds the memory a hostile message can take; the broker drops bigger
/// ones for the logger instead of sending them.
pub const MAX_INCOMING: u32 = 16 * 1024 * 1024;

/// How long the broker keeps the logger's session after it disconnects, in seconds: for ever
/// (`0xFFFFFFFF`), as an MQTT 3.1.1 persistent session is kept. A logger stopped for days
/// still finds what the broker queued for it (up to mosquitto's `max_queued_messages`);
/// mosquitto's `persistent_client_expiration` removes sessions abandoned for good.
pub const SESSION_EXPIRY: u32 = u32::MAX;

/// How long, after our DISCONNECT went out, messages still arriving are read (and dropped):
/// enough for the broker to see the DISCONNECT.
const CLOSING: Duration = Duration::from_secs(1);

/// The logger's default MQTT client id: fixed, so the broker keeps its session between runs.
pub fn client_id(base_topic: &str) -> String {
    format!("linkymon-logger-{}", base_topic.replace('/', "-"))
}

/// How many messages the broker may have sent the logger unacknowledged, with manual acks
/// (MQTT 5's Receive Maximum): what the database sink holds at most
/// ([`super::database::BUFFER`]), so that messages waiting for the database never hold up
/// the logger's loop.
pub const RECEIVE_MAXIMUM: u16 = 10_000;

/// How the logger's session is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `logger.client_id`, else [`client_id`].
    pub client_id: String,
    /// Acknowledge each message only when told to ([`Ack`]), as `logger.database` needs;
    /// otherwise rumqttc acknowledges each message as it reads it.
    pub manual_acks: bool,
}

impl Session {
    /// The session `logger` asks for.
    pub fn of(logger: &LoggerConfig, base_topic: &str) -> Session {
        Session {
            client_id: logger
                .client_id
                .clone()
                .unwrap_or_else(|| client_id(base_topic)),
            manual_acks: logger.database.is_some(),
        }
    }
}

/// The logger's connection settings: the broker, login and TLS as the daemon's
/// ([`link::options_v5`]), with a persistent session under `session.client_id`,
/// [`SESSION_EXPIRY`] and [`MAX_INCOMING`]; with manual acks, [`RECEIVE_MAXIMUM`].
pub fn options(broker: &Broker, session: &Session) -> MqttOptions {
    let mut options = link::options_v5(broker, session.client_id.clone());
    options.set_clean_start(false);
    options.set_session_expiry_interval(Some(SESSION_EXPIRY));
    options.set_max_packet_size(Some(MAX_INCOMING));
    if session.manual_acks {
        options.set_manual_acks(true);
        options.set_receive_maximum(Some(RECEIVE_MAXIMUM));
    }
    options
}

/// What acknowledges one received message, with manual acks: its packet id and QoS only (no
/// topic, payload or properties), so that tokens waiting for the database take a few bytes.
#[derive(Debug, Clone)]
pub struct Ack(Publish);

impl Ack {
    fn of(p: &Publish) -> Ack {
        let mut token = Publish::new("", p.qos, Vec::new(), None);
        token.pkid = p.pkid;
        Ack(token)
    }

    /// Queues the acknowledgement (waits while rumqttc's request queue is full).
    pub async fn send(&self, client: &AsyncClient) {
        if let Err(e) = client.ack(&self.0).await {
            warn!("cannot acknowledge a message: {e}");
        }
    }
}

/// What the connection tells the logger.
#[derive(Debug)]
pub enum LinkEvent {
    /// The broker accepted the connection (again): time to subscribe and announce.
    Connected,
    /// A message on a subscribed topic.
    Message {
        /// Its topic.
        topic: String,
        /// Its payload, as text.
        payload: String,
        /// Sent as a retained message, at subscription (brokers send live messages with the
        /// flag off).
        retained: bool,
        /// With manual acks: what acknowledges it, once it is kept.
        ack: Option<Ack>,
    },
    /// A message too big to be a `state` or a status, dropped unread.
    Oversized {
        /// Its topic.
        topic: String,
        /// Its payload's size.
        bytes: usize,
        /// With manual acks: what acknowledges it (it is dropped, but must not come again).
        ack: Option<Ack>,
    },
}

/// The logger's side of a running connection.
#[derive(Debug)]
pub struct Link {
    /// Publishes and subscribes; requests queue and the event loop sends them.
    pub client: AsyncClient,
    /// What the connection brings; ends when the connection is over after a disconnect.
    pub events: mpsc::Receiver<LinkEvent>,
    /// The task driving the event loop.
    pub poller: JoinHandle<()>,
}

/// Starts the connection to `mqtt.host`; it connects, and reconnects, in the background. A
/// TLS file that cannot be used is a config error.
pub fn connect(m: &MqttConfig, session: &Session) -> Result<Link, ConfigError> {
    let broker = Broker::from_config(m)?;
    let (client, eventloop) = AsyncClient::new(options(&broker, session), 1024);
    let (events_tx, events) = mpsc::channel(256);
    let poller = tokio::spawn(poll(
        eventloop,
        events_tx,
        broker.address(),
        broker.tls.is_some(),
        session.manual_acks,
    ));
    Ok(Link {
        client,
        events,
        poller,
    })
}

/// A topic filter the logger subscribes to, at QoS 1.
#[derive(Debug, Clone, Copy)]
pub struct Subscription<'a> {
    /// The topic filter.
    pub filter: &'a str,
    /// Whether the broker sends the retained message(s) on it when subscribing.
    pub retained: bool,
}

/// Subscribes to `subscriptions` in one SUBSCRIBE; a refusal to queue is logged (the next
/// connection subscribes again).
pub fn subscribe(client: &AsyncClient, subscriptions: &[Subscription]) {
    let filters = subscriptions.iter().map(|s| {
        let mut filter = Filter::new(s.filter, QoS::AtLeastOnce);
        if !s.retained {
            filter.retain_forward_rule = RetainForwardRule::Never;
        }
        filter
    });
    if let Err(e) = client.try_subscribe_many(filters) {
        warn!("cannot subscribe: {e}");
    }
}

/// Queues `messages` for publishing, each at its QoS and retain flag.
pub fn send(client: &AsyncClient, messages: Vec<Message>) {
    for m in messages {
        let qos = if m.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        if let Err(e) = client.try_publish(m.topic.clone(), qos, m.retain, m.payload) {
            warn!("cannot queue {}: {e}", m.topic);
        }
    }
}

/// Drives the connection, with our own backoff (rumqttc's `poll` retries at once).
///
/// Around our DISCONNECT, each message is logged exactly once: rumqttc acknowledges a message
/// as it reads it (without manual acks), in the same byte stream as the DISCONNECT. What was read before the
/// DISCONNECT went out is acknowledged, so it is forwarded (and logged before the logger
/// stops); what arrives after it can no longer be acknowledged, so the broker sends it again
/// to the next session, and it is dropped here rather than logged twice.
async fn poll(
    mut eventloop: EventLoop,
    events: mpsc::Sender<LinkEvent>,
    broker: String,
    tls: bool,
    manual_acks: bool,
) {
    let mut backoff = Backoff::default();
    let mut down_logged = false;
    let mut closing: Option<tokio::time::Instant> = None;
    loop {
        let event = match closing {
            Some(deadline) => match tokio::time::timeout_at(deadline, eventloop.poll()).await {
                Ok(Ok(event)) => event,
                Ok(Err(_)) | Err(_) => return,
            },
            None => match eventloop.poll().await {
                Ok(event) => event,
                Err(e) => {
                    if !down_logged {
                        let why = if let ConnectionError::MqttState(StateError::Deserialization(
                            rumqttc::v5::mqttbytes::Error::PayloadSizeLimitExceeded {
                                pkt_size,
                                ..
                            },
                        )) = &e
                        {
                            // Only a broker that ignores the Maximum Packet Size sends one.
                            format!(
                                "a message of {pkt_size} bytes is over the logger's limit of \
                                 {MAX_INCOMING}, which this broker ignores: remove it (an empty \
                                 retained message on its topic) and set the broker's message \
                                 size limit"
                            )
                        } else {
                            diagnosis::describe_v5(&e, tls)
                        };
                        warn!(%broker, "cannot use the MQTT broker: {why}; retrying with backoff");
                        down_logged = true;
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            },
        };
        match event {
            Event::Incoming(Packet::ConnAck(ack)) => {
                backoff.reset();
                info!(%broker, session_present = ack.session_present, "connected to the MQTT broker");
                down_logged = false;
                if events.send(LinkEvent::Connected).await.is_err() {
                    return;
                }
            }
            Event::Incoming(Packet::Publish(p)) if closing.is_none() => {
                let ack = manual_acks.then(|| Ack::of(&p));
                // An oversized payload is not copied: the logbook counts it by its length.
                if p.payload.len() > super::checks::MAX_STATE_BYTES {
                    let message = LinkEvent::Oversized {
                        topic: topic(&p.topic),
                        bytes: p.payload.len(),
                        ack,
                    };
                    if events.send(message).await.is_err() {
                        return;
                    }
                    continue;
                }
                let payload = String::from_utf8_lossy(&p.payload).into_owned();
                let message = LinkEvent::Message {
                    topic: topic(&p.topic),
                    payload,
                    retained: p.retain,
                    ack,
                };
                if events.send(message).await.is_err() {
                    return;
                }
            }
            Event::Outgoing(Outgoing::Disconnect) => {
                closing = Some(tokio::time::Instant::now() + CLOSING);
            }
            _ => {}
        }
    }
}

/// A received topic as text (MQTT topics are UTF-8; anything else cannot match ours).
fn topic(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}
