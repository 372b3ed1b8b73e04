//! The rumqttc glue: the only part of [`crate::publish`] that touches the network.
//!
//! One task polls the event loop (rumqttc's `poll` reconnects at once on error, so the
//! backoff is ours); the publisher task turns readings into messages with the [`Policy`] and
//! reacts to every ConnAck (online, discovery, subscription) and to Home Assistant's
//! `online` status by announcing again.

use std::collections::{BTreeSet, HashMap, VecDeque};
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
use super::spool::Spool;
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

/// What the connection task tells the publisher.
enum LinkEvent {
    /// A connection is up (ConnAck); its client takes the publications from now on.
    Connected(AsyncClient),
    /// A QoS 1 publication went out with this packet id; they go out in the order queued.
    Sent(u16),
    /// The broker acknowledged this packet id.
    Acked(u16),
    /// Home Assistant restarted and wants discovery again.
    HomeAssistantOnline,
    /// The connection is lost, with whatever it had queued: what the broker did not
    /// acknowledge is the publisher's to send again.
    Disconnected,
}

/// Where a `state` message lives until the broker acknowledges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateRef {
    /// Sent at once, kept in memory ([`Outbox::live`]).
    Live(u64),
    /// Sent from the spool.
    Spooled(u64),
}

/// Spooled messages in flight at once: enough to keep a broker busy, few enough that live
/// publications never queue behind more than a moment of backlog.
const SPOOL_WINDOW: usize = 32;

/// Spooled messages sent per turn of the publisher's loop, between live readings.
const SPOOL_BATCH: usize = 8;

/// One connection to the broker, as the publisher sees it.
struct Link {
    client: AsyncClient,
    /// One entry per QoS 1 publication queued and not yet seen going out, in order.
    queued: VecDeque<Option<StateRef>>,
    /// The `state` messages sent and not acknowledged, by packet id.
    in_flight: HashMap<u16, StateRef>,
    /// How many of those came from the spool.
    spooled_in_flight: usize,
}

impl Link {
    fn new(client: AsyncClient) -> Self {
        Link {
            client,
            queued: VecDeque::new(),
            in_flight: HashMap::new(),
            spooled_in_flight: 0,
        }
    }
}

/// The `state` messages the broker has not acknowledged: on disk in the spool, or, sent at
/// once while the link is up and nothing older waits, in memory until their PUBACK. When the
/// link drops or the daemon stops, those in memory go to the spool behind the older ones, so
/// the `state` topic keeps the meter's order through any outage.
struct Outbox {
    spool: Spool,
    live: VecDeque<(u64, Message)>,
    next_live: u64,
    /// The spool refused a message: said once until it takes one again.
    failing: bool,
    /// The spool could not be read: wait for the next sync tick before trying again.
    read_paused: bool,
}

impl Outbox {
    fn new(spool: Spool) -> Self {
        Outbox {
            spool,
            live: VecDeque::new(),
            next_live: 0,
            failing: false,
            read_paused: false,
        }
    }

    /// Keeps a message sent at once until it is acknowledged; returns its reference.
    fn keep_live(&mut self, m: &Message) -> StateRef {
        let id = self.next_live;
        self.next_live += 1;
        self.live.push_back((id, m.clone()));
        StateRef::Live(id)
    }

    /// Appends a message to the spool; a refusal (disk full) loses this one, counted.
    fn store(&mut self, m: &Message) {
        match self.spool.append(&m.topic, &m.payload) {
            Ok(_) if self.failing => {
                info!("the spool takes messages again");
                self.failing = false;
            }
            Ok(_) => {}
            Err(e) if !self.failing => {
                warn!(error = %e, "cannot write to the spool (mqtt.spool_dir); state messages are dropped until it can");
                self.failing = true;
            }
            Err(_) => {}
        }
    }

    fn has_unsent(&self) -> bool {
        self.spool.has_unsent() && !self.read_paused
    }

    /// The next spooled message to send, if any.
    fn next_unsent(&mut self) -> Option<(Message, StateRef)> {
        match self.spool.next_unsent() {
            Ok(record) => record.map(|r| {
                (
                    Message::new(r.topic, r.payload, false, 1),
                    StateRef::Spooled(r.seq),
                )
            }),
            Err(e) => {
                warn!(error = %e, "cannot read the spool (mqtt.spool_dir); trying again in a second");
                self.read_paused = true;
                None
            }
        }
    }

    fn acked(&mut self, r: StateRef) {
        match r {
            StateRef::Live(id) => {
                if let Some(at) = self.live.iter().position(|(i, _)| *i == id) {
                    self.live.remove(at);
                }
            }
            StateRef::Spooled(seq) => self.spool.ack(seq),
        }
    }

    /// The link is lost or the daemon stops: unacknowledged live messages go to the spool,
    /// behind the older ones, and everything unacknowledged is sent again on the next link.
    fn spill(&mut self) {
        for (_, m) in std::mem::take(&mut self.live) {
            self.store(&m);
        }
        self.spool.rewind();
    }

    /// Nothing waits for an acknowledgement.
    fn idle(&self) -> bool {
        self.live.is_empty() && self.spool.stats().backlog == 0
    }

    /// Makes what was written durable and forgets what was acknowledged; once a second.
    fn sync(&mut self) {
        self.read_paused = false;
        if let Err(e) = self.spool.sync() {
            warn!(error = %e, "cannot sync the spool (mqtt.spool_dir)");
        }
    }
}

/// The publisher's side of the connection: the current link, if any, and the outbox.
struct Sender {
    link: Option<Link>,
    outbox: Outbox,
    state_topic: String,
}

impl Sender {
    /// Queues messages on the link. `state` messages wait in the spool while there is no link
    /// or older ones still wait; the rest needs a link (retained values, flags and discovery
    /// are sent again on every ConnAck).
    async fn send_all(&mut self, messages: Vec<Message>, shutdown: &CancellationToken) {
        for m in messages {
            if m.topic == self.state_topic {
                if self.link.is_some() && !self.outbox.spool.has_unsent() {
                    let state = self.outbox.keep_live(&m);
                    self.send(m, Some(state), shutdown).await;
                } else {
                    self.outbox.store(&m);
                }
            } else if self.link.is_some() {
                self.send(m, None, shutdown).await;
            }
        }
    }

    /// Queues one message for the event loop, waiting while its queue is full (the broker
    /// is slow) unless the daemon is stopping. False when it could not be queued.
    async fn send(
        &mut self,
        m: Message,
        state: Option<StateRef>,
        shutdown: &CancellationToken,
    ) -> bool {
        let Some(link) = &mut self.link else {
            return false;
        };
        let qos = if m.qos == 0 {
            QoS::AtMostOnce
        } else {
            link.queued.push_back(state);
            QoS::AtLeastOnce
        };
        if matches!(state, Some(StateRef::Spooled(_))) {
            link.spooled_in_flight += 1;
        }
        tokio::select! {
            // An error: the event loop is gone with its connection; `Disconnected` follows.
            sent = link.client.publish(m.topic, qos, m.retain, m.payload) => sent.is_ok(),
            () = shutdown.cancelled() => false,
        }
    }

    /// Whether spooled messages can go out now.
    fn can_drain(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|l| l.spooled_in_flight < SPOOL_WINDOW)
            && self.outbox.has_unsent()
    }

    /// Sends a few spooled messages, oldest first.
    async fn drain(&mut self, shutdown: &CancellationToken) {
        for _ in 0..SPOOL_BATCH {
            if !self.can_drain() {
                break;
            }
            let Some((m, state)) = self.outbox.next_unsent() else {
                break;
            };
            if !self.send(m, Some(state), shutdown).await {
                break;
            }
        }
    }

    /// Packet ids, acknowledgements and lost connections.
    fn on_link_event(&mut self, event: &LinkEvent) {
        match *event {
            LinkEvent::Sent(pkid) => {
                if let Some(link) = &mut self.link
                    && let Some(Some(state)) = link.queued.pop_front()
                {
                    link.in_flight.insert(pkid, state);
                }
            }
            LinkEvent::Acked(pkid) => {
                if let Some(link) = &mut self.link
                    && let Some(state) = link.in_flight.remove(&pkid)
                {
                    if matches!(state, StateRef::Spooled(_)) {
                        link.spooled_in_flight -= 1;
                    }
                    self.outbox.acked(state);
                }
            }
            LinkEvent::Disconnected => {
                self.link = None;
                self.outbox.spill();
            }
            LinkEvent::Connected(_) | LinkEvent::HomeAssistantOnline => {}
        }
    }
}

/// Publishes readings until `readings` closes (the source ended) or `shutdown` fires; then
/// says `offline`, disconnects, leaves what the broker did not acknowledge in `spool` and
/// returns. A broker that is unreachable never stops it.
pub async fn publish(
    settings: MqttSettings,
    spool: Spool,
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
    let status_topic = format!("{}/status", settings.discovery_prefix);
    // Unbounded: the poller must never wait on the publisher, which may be waiting on it.
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let poller = tokio::spawn(poll(
        connect_options(&settings, &topics, &id),
        status_topic.clone(),
        events_tx,
        settings.clone(),
    ));

    let mut out = Sender {
        link: None,
        outbox: Outbox::new(spool),
        state_topic: topics.state(),
    };
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
    out.send_all(first_messages, &shutdown).await;
    let mut diag_tick =
        tokio::time::interval_at(started + Duration::from_secs(60), Duration::from_secs(60));
    let mut sync_tick = tokio::time::interval(Duration::from_secs(1));
    sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut source_ended = false;
    let mut relay_open = true;
    let give_up = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(give_up);
    loop {
        // A replay ended: stop once the broker has everything, or gave up waiting for it.
        if source_ended && out.link.is_some() && out.outbox.idle() {
            break;
        }
        tokio::select! {
            next = readings.recv(), if !source_ended => match next {
                Some(p) => {
                    if announcer.learn(&p.reading) && settings.discovery && out.link.is_some() {
                        out.send_all(announcer.changed(&p.reading), &shutdown).await;
                    }
                    let messages = policy.on_reading(&p.reading, &p.ts, p.at, Extras { power_w: p.power_w });
                    out.send_all(messages, &shutdown).await;
                    last = p;
                }
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
                        out.send_all(vec![super::relay_message(&topics, closed)], &shutdown).await;
                    }
                }
                Err(_) => relay_open = false,
            },
            Some(event) = events.recv() => match event {
                LinkEvent::Connected(client) => {
                    out.link = Some(Link::new(client));
                    let mut messages = vec![Message::new(topics.availability(), "online", true, 1)];
                    if settings.discovery {
                        messages.extend(announcer.all(&last.reading));
                    }
                    // Retained values went nowhere without a link, and a restarted broker may
                    // have lost them: send the latest of each now (its `state` went already).
                    policy.forget();
                    let extras = Extras { power_w: last.power_w };
                    messages.extend(
                        policy
                            .on_reading(&last.reading, &last.ts, last.at, extras)
                            .into_iter()
                            .filter(|m| m.topic != out.state_topic),
                    );
                    let relay_closed = *relay.borrow();
                    if let Some(closed) = relay_closed {
                        messages.push(super::relay_message(&topics, closed));
                    }
                    out.send_all(messages, &shutdown).await;
                    if let Some(link) = &out.link
                        && let Err(e) = link.client.try_subscribe(status_topic.clone(), QoS::AtLeastOnce)
                    {
                        warn!("cannot subscribe to {status_topic}: {e}");
                    }
                }
                LinkEvent::HomeAssistantOnline if settings.discovery && out.link.is_some() => {
                    out.send_all(announcer.all(&last.reading), &shutdown).await;
                }
                other => out.on_link_event(&other),
            },
            () = std::future::ready(()), if out.can_drain() => out.drain(&shutdown).await,
            _ = sync_tick.tick() => out.outbox.sync(),
            _ = diag_tick.tick() => {
                let diag = Diag {
                    tic: last.tic,
                    meter: last.meter,
                    mode: last.mode,
                    uptime_s: started.elapsed().as_secs(),
                    frames_not_published: last.frames_not_published,
                    spool: out.outbox.spool.stats(),
                };
                out.send_all(vec![policy.diag(&diag)], &shutdown).await;
            }
            () = shutdown.cancelled() => break,
        }
    }
    // Stopping: the shutdown token has fired, so wait on a fresh one, briefly. If `offline`
    // cannot even be queued, no DISCONNECT is sent and the broker publishes the Last Will.
    let connected = out.link.is_some();
    if connected {
        let offline = vec![Message::new(topics.availability(), "offline", true, 1)];
        if tokio::time::timeout(
            Duration::from_secs(1),
            out.send_all(offline, &CancellationToken::new()),
        )
        .await
        .is_ok()
            && let Some(link) = &out.link
        {
            let _ = link.client.try_disconnect();
        }
    }
    finish(poller, connected).await;
    // Acknowledgements that arrived while stopping, then the rest waits on disk.
    while let Ok(event) = events.try_recv() {
        if !matches!(event, LinkEvent::Disconnected) {
            out.on_link_event(&event);
        }
    }
    out.outbox.spill();
    out.outbox.sync();
}

/// The MQTT options of the daemon's connection: the Last Will, keep-alive and credentials.
fn connect_options(settings: &MqttSettings, topics: &Topics, id: &str) -> MqttOptions {
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
    options
}

/// Gives the event loop a moment to write what is queued and the DISCONNECT; without a
/// connection there is nothing to wait for.
async fn finish(poller: JoinHandle<()>, connected: bool) {
    if !connected {
        poller.abort();
        return;
    }
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

/// Drives the connection: connects, reconnects with backoff, and reports what the publisher
/// acts on. Each connection gets a fresh event loop, so nothing queued on a lost one is sent
/// later out of order: the publisher, told `Disconnected`, sends again what was not
/// acknowledged.
async fn poll(
    options: MqttOptions,
    status_topic: String,
    events: mpsc::UnboundedSender<LinkEvent>,
    settings: MqttSettings,
) {
    let mut backoff = Backoff::default();
    let mut down_logged = false;
    let broker = format!("{}:{}", settings.host, settings.port);
    // Without TCP_NODELAY, Nagle's algorithm and the broker's delayed ACK hold small
    // messages for ~40 ms: the state of a frame would reach Home Assistant late.
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    loop {
        let (client, mut eventloop) = AsyncClient::new(options.clone(), 256);
        eventloop.set_network_options(network.clone());
        let mut client = Some(client); // handed over at ConnAck
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    backoff.reset();
                    info!(%broker, "connected to the MQTT broker");
                    down_logged = false;
                    if let Some(client) = client.take() {
                        let _ = events.send(LinkEvent::Connected(client));
                    }
                }
                Ok(Event::Outgoing(Outgoing::Publish(pkid))) if pkid != 0 => {
                    let _ = events.send(LinkEvent::Sent(pkid));
                }
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    let _ = events.send(LinkEvent::Acked(ack.pkid));
                }
                Ok(Event::Incoming(Packet::Publish(p))) if p.topic == status_topic => {
                    if p.payload.as_ref() == b"online" {
                        let _ = events.send(LinkEvent::HomeAssistantOnline);
                    }
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    // Read until the broker closes the connection: closing a socket with
                    // unread acknowledgements in it sends a reset, and the broker may then
                    // drop the last messages (`offline` among them) before it reads them.
                    let drain = async {
                        while let Ok(event) = eventloop.poll().await {
                            if let Event::Incoming(Packet::PubAck(ack)) = event {
                                let _ = events.send(LinkEvent::Acked(ack.pkid));
                            }
                        }
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
                    return;
                }
                Ok(_) => {}
                Err(e) => {
                    if !down_logged {
                        warn!(%broker, error = %describe(&e, settings.tls.is_some()), "no connection to the MQTT broker; retrying with backoff");
                        down_logged = true;
                    }
                    if client.is_none() {
                        let _ = events.send(LinkEvent::Disconnected);
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                    break;
                }
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
