//! The logger's MQTT connection, on rumqttc's `AsyncClient` and `EventLoop`: a persistent
//! session that subscribes to the daemon's `state` messages and Home Assistant's status, and
//! publishes `today` and its discovery.
//!
//! - **Nothing lost across restarts.** The session is persistent (fixed client id
//!   `linkymon-logger-<base>`, clean session off) and subscribes at QoS 1, so the broker keeps
//!   what comes while the logger is away (mosquitto keeps 1000 messages per client by
//!   default: `max_queued_messages` sets it).
//! - **Each message logged once around a stop.** See [`poll`].
//! - **One connection code with the daemon.** Host, port, credentials and TLS (`mqtt.tls`,
//!   `ca_file`, `client_cert`, `client_key`) come from [`crate::publish::link::options`], so
//!   a setting cannot apply to one process only.
//! - **No lock-out by a poison message.** rumqttc ends the connection on a packet bigger
//!   than its limit, and the broker then sends the same message again (retained, or queued on
//!   the persistent session) at every reconnection. The limit is [`MAX_INCOMING`], far above
//!   any real message; a message over [`super::checks::MAX_STATE_BYTES`] is dropped unread
//!   and counted by the logbook. A message over [`MAX_INCOMING`] still ends the connection:
//!   that is said in one line naming the broker setting that prevents it.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::{ConfigError, LoggerConfig, MqttConfig};
use crate::publish::Message;
use crate::publish::diagnosis;
use crate::publish::link::{self, Broker};
use crate::source::Backoff;

/// The largest incoming packet read: a `state` is under 4 KiB, so this only bounds the
/// memory a hostile message can take (mosquitto's `message_size_limit` caps it at the broker).
pub const MAX_INCOMING: usize = 16 * 1024 * 1024;

/// How long, after our DISCONNECT went out, messages still arriving are read (and dropped):
/// enough for the broker to see the DISCONNECT.
const CLOSING: Duration = Duration::from_secs(1);

/// The logger's default MQTT client id: fixed, so the broker keeps its session between runs.
pub fn client_id(base_topic: &str) -> String {
    format!("linkymon-logger-{}", base_topic.replace('/', "-"))
}

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

/// The logger's connection settings: the daemon's ([`link::options`]: host, port,
/// credentials, TLS), with a persistent session under `session.client_id` and
/// [`MAX_INCOMING`].
pub fn options(broker: &Broker, session: &Session) -> MqttOptions {
    let mut options = link::options(broker, session.client_id.clone());
    options.set_clean_session(false);
    options.set_max_packet_size(MAX_INCOMING, link::MAX_PACKET);
    options.set_manual_acks(session.manual_acks);
    options
}

/// What acknowledges one received message, with manual acks: its packet id and QoS only (no
/// payload), so that tokens waiting for the database take a few bytes each.
#[derive(Debug, Clone)]
pub struct Ack(Publish);

impl Ack {
    fn of(p: &Publish) -> Ack {
        let mut token = Publish::new("", p.qos, Vec::new());
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

/// Subscribes to `topics` at QoS 1; a refusal to queue is logged (the next connection
/// subscribes again).
pub fn subscribe(client: &AsyncClient, topics: &[&str]) {
    for topic in topics {
        if let Err(e) = client.try_subscribe(*topic, QoS::AtLeastOnce) {
            warn!("cannot subscribe to {topic}: {e}");
        }
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
/// as it reads it, in the same byte stream as the DISCONNECT. What was read before the
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
                        let why = if let rumqttc::ConnectionError::MqttState(
                            rumqttc::StateError::Deserialization(
                                rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(n),
                            ),
                        ) = &e
                        {
                            format!(
                                "a message of {n} bytes is over the logger's limit of \
                                 {MAX_INCOMING}, and the broker sends it again at each \
                                 connection: remove it (an empty retained message on its topic) \
                                 and set mosquitto's message_size_limit"
                            )
                        } else {
                            diagnosis::describe(&e, tls)
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
                        topic: p.topic,
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
                    topic: p.topic,
                    payload,
                    ack,
                };
                if events.send(message).await.is_err() {
                    return;
                }
            }
            Event::Outgoing(rumqttc::Outgoing::Disconnect) => {
                closing = Some(tokio::time::Instant::now() + CLOSING);
            }
            _ => {}
        }
    }
}
