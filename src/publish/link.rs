//! One connection to the broker on rumqttc's event loop, with each QoS 1 acknowledgement
//! matched to what the caller sent.
//!
//! rumqttc takes publications in the order they are queued and reports each as it writes it
//! (`Outgoing::Publish(pkid)`), then the broker's `PubAck(pkid)`. A [`Link`] keeps the
//! caller's tag of every queued publication in that order, so the n-th write report names the
//! n-th publication and its packet id; the acknowledgement of that packet id then hands the
//! tag back. A link is one connection: when it is lost, the caller drops it and opens another,
//! so nothing is re-sent behind the caller's back (the caller keeps what was not acknowledged).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rumqttc::{
    AsyncClient, ClientError, ConnectionError, Event, EventLoop, MqttOptions, NetworkOptions,
    Outgoing, Packet, Publish, QoS,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Requests queued for the event loop at most: more than the publisher lets wait
/// ([`Link::unwritten`] is checked before taking readings) plus a full set of discovery configs.
const REQUEST_CAPACITY: usize = 1024;

/// Events in transit from the event loop's task to the caller; the task waits when it is full.
const EVENT_CAPACITY: usize = 64;

/// How long connecting (TCP, TLS, CONNACK) may take.
const CONNECTION_TIMEOUT_S: u64 = 5;

/// What happened on the link, as the caller acts on it.
#[derive(Debug)]
pub enum LinkEvent<T> {
    /// The broker accepted the connection (CONNACK).
    Up,
    /// Publications were written (there is room for more) and the broker acknowledged the
    /// QoS 1 ones with these tags, oldest first: everything the event loop reported since the
    /// last event, taken in one go.
    Progress(Vec<T>),
    /// A message on a subscribed topic.
    Message(Publish),
    /// The connection failed or was lost; the link is finished.
    Down(ConnectionError),
}

/// A connection (or an attempt at one) driven by rumqttc's [`EventLoop`] in a task of its own.
/// Dropping the link ends the task and closes the connection.
pub struct Link<T> {
    client: AsyncClient,
    events: mpsc::Receiver<Result<Event, ConnectionError>>,
    driver: JoinHandle<()>,
    /// Tags of the publications queued and not yet written, oldest first.
    unwritten: VecDeque<Option<T>>,
    /// Tags of the QoS 1 publications written and not yet acknowledged, by packet id.
    in_flight: HashMap<u16, T>,
    up: bool,
    /// An event found while gathering progress, returned next.
    held: Option<LinkEvent<T>>,
}

impl<T: Copy> Link<T> {
    /// Starts connecting with `options`; [`LinkEvent::Up`] or [`LinkEvent::Down`] says how it
    /// went. Needs a tokio runtime.
    pub fn open(options: MqttOptions) -> Self {
        let (client, mut eventloop) = AsyncClient::new(options, REQUEST_CAPACITY);
        let mut network = NetworkOptions::new();
        // Nagle's algorithm stays on: the event loop writes each publication on its own, and
        // the kernel gathers those that follow an unacknowledged segment (a burst, or a
        // frame's retained values behind its `state`) into one. A frame's `state` is its
        // first publication, sent at once when the previous frame's were acknowledged.
        network.set_connection_timeout(CONNECTION_TIMEOUT_S);
        eventloop.set_network_options(network);
        let (sender, events) = mpsc::channel(EVENT_CAPACITY);
        let driver = tokio::spawn(drive(eventloop, sender));
        Link {
            client,
            events,
            driver,
            unwritten: VecDeque::new(),
            in_flight: HashMap::new(),
            up: false,
            held: None,
        }
    }

    /// Whether the broker accepted the connection.
    pub fn is_up(&self) -> bool {
        self.up
    }

    /// Publications queued and not yet written.
    pub fn unwritten(&self) -> usize {
        self.unwritten.len()
    }

    /// Queues a publication; a QoS 1 one's `tag` comes back in [`LinkEvent::Acked`]. Fails
    /// only when the request queue is full, which the caller avoids by watching
    /// [`unwritten`](Self::unwritten).
    pub fn publish(
        &mut self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: String,
        tag: Option<T>,
    ) -> Result<(), ClientError> {
        self.client.try_publish(topic, qos, retain, payload)?;
        self.unwritten
            .push_back(tag.filter(|_| qos != QoS::AtMostOnce));
        Ok(())
    }

    /// Subscribes to `topic` at QoS 1.
    pub fn subscribe(&mut self, topic: &str) -> Result<(), ClientError> {
        self.client.try_subscribe(topic, QoS::AtLeastOnce)
    }

    /// Unsubscribes from `topic`.
    pub fn unsubscribe(&mut self, topic: &str) -> Result<(), ClientError> {
        self.client.try_unsubscribe(topic)
    }

    /// The next event the caller acts on. Cancel-safe: the only wait is for the first event;
    /// what else is already there is taken without waiting.
    pub async fn next(&mut self) -> LinkEvent<T> {
        if let Some(held) = self.held.take() {
            return held;
        }
        let mut acked = Vec::new();
        let mut event = self.events.recv().await;
        loop {
            let Some(e) = event else {
                return LinkEvent::Down(ConnectionError::RequestsDone);
            };
            if let Some(other) = self.on_event(e, &mut acked) {
                if acked.is_empty() {
                    return other;
                }
                self.held = Some(other);
                return LinkEvent::Progress(acked);
            }
            match self.events.try_recv() {
                Ok(e) => event = Some(e),
                Err(_) => return LinkEvent::Progress(acked),
            }
        }
    }

    /// Takes one event of the event loop: the writes and acknowledgements update the link
    /// (acknowledged tags go to `acked`); the rest is returned.
    fn on_event(
        &mut self,
        event: Result<Event, ConnectionError>,
        acked: &mut Vec<T>,
    ) -> Option<LinkEvent<T>> {
        match event {
            Err(e) => Some(LinkEvent::Down(e)),
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                self.up = true;
                Some(LinkEvent::Up)
            }
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                let tag = self.unwritten.pop_front().flatten();
                if let Some(tag) = tag
                    && pkid != 0
                {
                    self.in_flight.insert(pkid, tag);
                }
                None
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                acked.extend(self.in_flight.remove(&ack.pkid));
                None
            }
            Ok(Event::Incoming(Packet::Publish(p))) => Some(LinkEvent::Message(p)),
            Ok(_) => None,
        }
    }

    /// Says DISCONNECT after what is queued, then hands on the acknowledgements that arrive
    /// until the broker closes the connection (at most `wait`): closing a socket with unread
    /// data in it sends a reset, and the broker may then drop the last messages unread.
    pub async fn close(mut self, wait: std::time::Duration, mut acked: impl FnMut(T)) {
        if self.client.try_disconnect().is_err() {
            return;
        }
        let closing = async {
            loop {
                match self.next().await {
                    LinkEvent::Progress(tags) => tags.into_iter().for_each(&mut acked),
                    LinkEvent::Down(_) => break,
                    LinkEvent::Up | LinkEvent::Message(_) => {}
                }
            }
        };
        let _ = tokio::time::timeout(wait, closing).await;
    }
}

impl<T> Drop for Link<T> {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Polls the event loop and hands on the events a [`Link`] uses, until the connection fails
/// or the link is dropped. The first error ends it: a new link is a new connection.
async fn drive(mut eventloop: EventLoop, events: mpsc::Sender<Result<Event, ConnectionError>>) {
    loop {
        let event = eventloop.poll().await;
        let wanted = match &event {
            Err(_) => true,
            Ok(Event::Incoming(p)) => matches!(
                p,
                Packet::ConnAck(_) | Packet::PubAck(_) | Packet::Publish(_)
            ),
            Ok(Event::Outgoing(o)) => matches!(o, Outgoing::Publish(_)),
        };
        let end = event.is_err();
        if wanted && events.send(event).await.is_err() {
            return;
        }
        if end {
            return;
        }
    }
}

/// The daemon's connection options (MQTT 3.1.1): host, port, client id, keep-alive, the
/// largest packet either way, credentials and TLS. The logger's (MQTT 5) are
/// [`options_v5`]; both take the broker, the login and the TLS configuration from [`Broker`],
/// so a setting cannot apply to one process only.
pub fn options(broker: &Broker, client_id: String) -> MqttOptions {
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options.set_keep_alive(KEEP_ALIVE);
    options.set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if let Some((user, password)) = broker.login() {
        options.set_credentials(user, password);
    }
    if let Some(transport) = broker.tls_transport() {
        options.set_transport(transport);
    }
    options
}

/// The same as [`options`] for an MQTT 5 connection (the logger's): host, port, client id,
/// keep-alive, credentials and TLS. Its session and packet limits are the caller's.
pub fn options_v5(broker: &Broker, client_id: String) -> rumqttc::v5::MqttOptions {
    let mut options = rumqttc::v5::MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options.set_keep_alive(KEEP_ALIVE);
    if let Some((user, password)) = broker.login() {
        options.set_credentials(user, password);
    }
    if let Some(transport) = broker.tls_transport() {
        options.set_transport(transport);
    }
    options
}

/// How long a connection may stay silent before a ping.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(30);

/// "No connection to the MQTT broker", said once per outage for all the links of a daemon
/// (the meter's and the bridge status's, [`super::bridge`]): an outage or a refused login is
/// the broker's, not a link's, so it is one line in the log however many links meet it.
#[derive(Debug, Clone, Default)]
pub struct Outages(Arc<AtomicBool>);

impl Outages {
    /// A link failed: says so unless it was said since a link last came up.
    pub fn down(&self, broker: &Broker, e: &ConnectionError) {
        if !self.0.swap(true, Ordering::Relaxed) {
            tracing::warn!(broker = %broker.address(), error = %super::diagnosis::describe(e, broker.tls.is_some()), "no connection to the MQTT broker; retrying with backoff");
        }
    }

    /// A link came up: the next failure is a new outage.
    pub fn up(&self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

/// The largest packet either way: a discovery config is under 2 KiB, a `state` under 4 KiB.
pub const MAX_PACKET: usize = 64 * 1024;

/// Where the broker is and how to log in: `mqtt.host`, `port`, the credentials and TLS.
#[derive(Debug, Clone)]
pub struct Broker {
    /// Broker host.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// User name, if the broker wants one.
    pub username: Option<String>,
    /// Password, if the broker wants one.
    pub password: Option<crate::config::Secret>,
    /// The rustls configuration when `mqtt.tls` is on; see [`super::tls`].
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Broker {
    /// The broker the configuration names; a TLS file that cannot be used is a config error.
    pub fn from_config(m: &crate::config::MqttConfig) -> Result<Self, crate::config::ConfigError> {
        Ok(Broker {
            host: m.host.clone(),
            port: m.port,
            username: m.username.clone(),
            password: m.password.clone(),
            tls: super::tls::client_config(m)?,
        })
    }

    /// The user name and password to send, if the broker wants a login (no password is an
    /// empty one).
    fn login(&self) -> Option<(String, String)> {
        let user = self.username.clone()?;
        let password = self
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        Some((user, password))
    }

    /// The TLS transport when `mqtt.tls` is on, for either protocol version.
    fn tls_transport(&self) -> Option<rumqttc::Transport> {
        let tls = self.tls.clone()?;
        Some(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(tls),
        ))
    }

    /// `host:port`, for the log.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}
