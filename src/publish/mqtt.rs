//! The publisher: turns readings into messages with the [`Policy`], keeps `state` messages in
//! the [`Outbox`] until the broker acknowledges them, and drives the one connection
//! ([`super::connection`]) itself: it reconnects with backoff, and on every ConnAck says
//! `online`, announces discovery and subscribes to Home Assistant's status, whose `online`
//! makes it announce again. Whatever one turn of its loop queues leaves in one write.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{ConnectionError, LastWill, Login, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Message;
use super::connection::{ConnectOptions, Connection, LinkError, Received};
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
    /// When its last byte arrived, ISO 8601 with the local offset; shared by the frames
    /// one read completed.
    pub ts: Arc<str>,
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

/// Readings taken in one turn of the publisher's loop when they queue up (a burst, a replay
/// at full speed): their messages then leave in one write.
const READINGS_PER_TURN: usize = 16;

/// Publications that may wait behind a full in-flight window (a slow broker) before the
/// publisher stops taking readings; the acquisition loop then counts what it cannot hand over.
const MAX_BACKLOG: usize = 256;

/// How long connecting, a handshake or a write may take before the link counts as lost.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(5);

/// One connection to the broker, as the publisher sees it.
struct Link {
    conn: Connection<StateRef>,
    /// Spooled messages sent and not yet acknowledged.
    spooled_in_flight: usize,
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

    /// Whether the next sync tick has something to do. The tick waits otherwise: on a
    /// healthy link it has nothing to do, and waking for it was one wake-up in ten at the line
    /// rate.
    fn needs_sync(&self) -> bool {
        self.read_paused || self.spool.needs_sync()
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
    fn send_all(&mut self, messages: Vec<Message>) -> Result<(), LinkError> {
        for m in messages {
            if m.topic == self.state_topic {
                if self.link.is_some() && !self.outbox.spool.has_unsent() {
                    let state = self.outbox.keep_live(&m);
                    self.send(m, Some(state))?;
                } else {
                    self.outbox.store(&m);
                }
            } else if self.link.is_some() {
                self.send(m, None)?;
            }
        }
        Ok(())
    }

    /// Queues one message on the link; it leaves with the turn's flush.
    fn send(&mut self, m: Message, state: Option<StateRef>) -> Result<(), LinkError> {
        let Some(link) = &mut self.link else {
            return Ok(());
        };
        let qos = if m.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        if matches!(state, Some(StateRef::Spooled(_))) {
            link.spooled_in_flight += 1;
        }
        link.conn.publish(m.topic, qos, m.retain, m.payload, state)
    }

    /// Whether the link can take more without queueing behind a full window.
    fn has_room(&self) -> bool {
        self.link
            .as_ref()
            .is_none_or(|l| l.conn.backlog() < MAX_BACKLOG)
    }

    /// Whether spooled messages can go out now.
    fn can_drain(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|l| l.spooled_in_flight < SPOOL_WINDOW && l.conn.backlog() == 0)
            && self.outbox.has_unsent()
    }

    /// Sends a few spooled messages, oldest first.
    fn drain(&mut self) -> Result<(), LinkError> {
        for _ in 0..SPOOL_BATCH {
            if !self.can_drain() {
                break;
            }
            let Some((m, state)) = self.outbox.next_unsent() else {
                break;
            };
            self.send(m, Some(state))?;
        }
        Ok(())
    }

    /// The broker acknowledged a `state` message.
    fn acked(&mut self, state: StateRef) {
        if let Some(link) = &mut self.link
            && matches!(state, StateRef::Spooled(_))
        {
            link.spooled_in_flight = link.spooled_in_flight.saturating_sub(1);
        }
        self.outbox.acked(state);
    }

    /// The link is gone: acknowledgements that had already arrived are taken first (a broker
    /// that acknowledges and then closes must not get those messages twice), and what was not
    /// acknowledged is sent again on the next link.
    async fn lose_link(&mut self) {
        if let Some(mut link) = self.link.take() {
            // A zero timeout polls once: only what is already readable.
            while let Ok(Ok(received)) =
                tokio::time::timeout(Duration::ZERO, link.conn.receive()).await
            {
                if let Received::Acked(Some(state)) = received {
                    self.outbox.acked(state);
                }
            }
        }
        self.outbox.spill();
    }
}

/// Connects and reconnects with backoff, one attempt at a time, polled by the publisher.
struct Connector {
    options: Arc<ConnectOptions>,
    backoff: Backoff,
    attempt: Option<Attempt>,
    /// "No connection" was said and "connected" was not said since.
    down_logged: bool,
    broker: String,
    tls: bool,
}

type Attempt = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<Connection<StateRef>, LinkError>> + Send>,
>;

impl Connector {
    fn new(options: ConnectOptions) -> Self {
        Connector {
            broker: format!("{}:{}", options.host, options.port),
            tls: options.tls.is_some(),
            options: Arc::new(options),
            backoff: Backoff::default(),
            attempt: None,
            down_logged: false,
        }
    }

    /// Starts an attempt after `delay`.
    fn start(&mut self, delay: Duration) {
        let options = self.options.clone();
        self.attempt = Some(Box::pin(async move {
            tokio::time::sleep(delay).await;
            Connection::open(&options).await
        }));
    }

    /// The outcome of the current attempt; never ready while there is none. Cancel-safe.
    async fn outcome(&mut self) -> Result<Connection<StateRef>, LinkError> {
        let Some(attempt) = &mut self.attempt else {
            return std::future::pending().await;
        };
        let outcome = attempt.await;
        self.attempt = None;
        outcome
    }

    fn connected(&mut self) {
        self.backoff.reset();
        self.down_logged = false;
        info!(broker = %self.broker, "connected to the MQTT broker");
    }

    /// An attempt failed or a link was lost: says so once, then tries again after the backoff.
    fn failed(&mut self, e: &ConnectionError) {
        if !self.down_logged {
            warn!(broker = %self.broker, error = %describe(e, self.tls), "no connection to the MQTT broker; retrying with backoff");
            self.down_logged = true;
        }
        let delay = self.backoff.next_delay();
        self.start(delay);
    }
}

/// The next packet from the broker on the link; never ready without one.
async fn receive(link: &mut Option<Link>) -> Result<Received<StateRef>, LinkError> {
    match link {
        Some(link) => link.conn.receive().await,
        None => std::future::pending().await,
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
    let mut connector = Connector::new(connect_options(&settings, &topics, &id));
    connector.start(Duration::ZERO);

    let mut out = Sender {
        link: None,
        outbox: Outbox::new(spool),
        state_topic: topics.state(),
    };
    let mut core = Core {
        policy: Policy::new(topics.clone(), settings.interval.as_secs_f64()),
        announcer: Announcer::new(&settings),
        discovery: settings.discovery,
        last: first,
    };
    core.announcer.learn(&core.last.reading);
    let first_messages = core.policy.on_reading(
        &core.last.reading,
        &core.last.ts,
        core.last.at,
        Extras {
            power_w: core.last.power_w,
        },
    );
    let _ = out.send_all(first_messages); // no link yet: the state goes to the spool
    let mut diag_tick =
        tokio::time::interval_at(started + Duration::from_secs(60), Duration::from_secs(60));
    let mut sync_tick = tokio::time::interval(Duration::from_secs(1));
    sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut source_ended = false;
    let mut relay_open = true;
    // Made once: a fresh one on every turn would register with the token each time.
    let cancelled = shutdown.cancelled();
    tokio::pin!(cancelled);
    let give_up = tokio::time::sleep(Duration::from_secs(3600));
    tokio::pin!(give_up);
    loop {
        // A replay ended: stop once the broker has everything, or gave up waiting for it.
        if source_ended && out.link.is_some() && out.outbox.idle() {
            break;
        }
        let queued: Result<(), LinkError> = tokio::select! {
            next = readings.recv(), if !source_ended && out.has_room() => match next {
                Some(p) => {
                    let mut queued = core.take(p, &mut out);
                    // Readings that queued up meanwhile go in the same write.
                    for _ in 1..READINGS_PER_TURN {
                        if queued.is_err() || !out.has_room() {
                            break;
                        }
                        match readings.try_recv() {
                            Ok(p) => queued = core.take(p, &mut out),
                            Err(_) => break, // empty, or closed: `recv` says which next turn
                        }
                    }
                    queued
                }
                None => {
                    source_ended = true;
                    give_up.as_mut().reset(tokio::time::Instant::now() + Duration::from_secs(5));
                    Ok(())
                }
            },
            () = &mut give_up, if source_ended => break,
            outcome = connector.outcome() => match outcome {
                Ok(conn) => {
                    connector.connected();
                    out.link = Some(Link { conn, spooled_in_flight: 0 });
                    let relay_closed = *relay.borrow();
                    let messages = core.announce_connection(&topics, relay_closed, &out.state_topic);
                    out.send_all(messages).and_then(|()| match &mut out.link {
                        Some(link) => link.conn.subscribe(&status_topic, QoS::AtLeastOnce),
                        None => Ok(()),
                    })
                }
                Err(e) => {
                    connector.failed(&e);
                    Ok(())
                }
            },
            received = receive(&mut out.link) => {
                let mut handled = received.and_then(|r| core.on_received(r, &mut out, &status_topic));
                // What else the same read brought in (acknowledgements come in bunches).
                while handled.is_ok() {
                    let Some(next) = out.link.as_mut().and_then(|l| l.conn.buffered()) else {
                        break;
                    };
                    handled = next.and_then(|r| core.on_received(r, &mut out, &status_topic));
                }
                handled
            }
            changed = relay.changed(), if relay_open => match changed {
                Ok(()) => {
                    let closed = *relay.borrow_and_update();
                    match closed {
                        Some(closed) => out.send_all(vec![super::relay_message(&topics, closed)]),
                        None => Ok(()),
                    }
                }
                Err(_) => {
                    relay_open = false;
                    Ok(())
                }
            },
            () = std::future::ready(()), if out.can_drain() => out.drain(),
            _ = sync_tick.tick(), if out.outbox.needs_sync() => {
                out.outbox.sync();
                Ok(())
            }
            _ = diag_tick.tick() => {
                let diag = Diag {
                    tic: core.last.tic,
                    meter: core.last.meter,
                    mode: core.last.mode,
                    uptime_s: started.elapsed().as_secs(),
                    frames_not_published: core.last.frames_not_published,
                    spool: out.outbox.spool.stats(),
                };
                out.send_all(vec![core.policy.diag(&diag)])
            }
            () = &mut cancelled => break,
        };
        // Everything this turn queued leaves in one write.
        let flushed = match (queued, &mut out.link) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(link)) if link.conn.unflushed() => tokio::select! {
                flushed = link.conn.flush() => flushed,
                () = &mut cancelled => Err(Box::new(ConnectionError::FlushTimeout)),
            },
            (Ok(()), _) => Ok(()),
        };
        if let Err(e) = flushed {
            if out.link.is_some() {
                out.lose_link().await;
                connector.failed(&e);
            }
            if shutdown.is_cancelled() {
                break;
            }
        }
    }
    // Stopping: say `offline` and DISCONNECT within 2 s. If that cannot be written, the
    // broker publishes the Last Will instead.
    if let Some(mut link) = out.link.take() {
        let offline = link.conn.publish(
            topics.availability(),
            QoS::AtLeastOnce,
            true,
            "offline".to_owned(),
            None,
        );
        if offline.is_ok() {
            let outbox = &mut out.outbox;
            let closing = link.conn.disconnect(|state| outbox.acked(state));
            if tokio::time::timeout(Duration::from_secs(2), closing)
                .await
                .is_err()
            {
                warn!("the broker did not take the last messages within 2 s");
            }
        }
    }
    // What the broker did not acknowledge waits on disk.
    out.outbox.spill();
    out.outbox.sync();
}

/// What the publisher knows beyond the link: the policy, what Home Assistant was told, and
/// the latest reading (announced again on every connection).
struct Core {
    policy: Policy,
    announcer: Announcer,
    discovery: bool,
    last: Published,
}

impl Core {
    /// Turns one reading into messages (discovery for new labels first) and queues them.
    fn take(&mut self, p: Published, out: &mut Sender) -> Result<(), LinkError> {
        let mut queued = Ok(());
        if self.announcer.learn(&p.reading) && self.discovery && out.link.is_some() {
            queued = out.send_all(self.announcer.changed(&p.reading));
        }
        let extras = Extras { power_w: p.power_w };
        let messages = self.policy.on_reading(&p.reading, &p.ts, p.at, extras);
        self.last = p;
        queued.and(out.send_all(messages))
    }

    /// Acts on what the broker sent: an acknowledged `state`, or Home Assistant's `online`.
    fn on_received(
        &mut self,
        received: Received<StateRef>,
        out: &mut Sender,
        status_topic: &str,
    ) -> Result<(), LinkError> {
        match received {
            Received::Acked(Some(state)) => {
                out.acked(state);
                Ok(())
            }
            Received::Message(p)
                if self.discovery && p.topic == status_topic && p.payload.as_ref() == b"online" =>
            {
                let configs = self.announcer.all(&self.last.reading);
                out.send_all(configs)
            }
            _ => Ok(()),
        }
    }

    /// What a new connection gets: `online`, discovery, and the latest retained values (they
    /// went nowhere without a link, and a restarted broker may have lost them; the `state` of
    /// that reading went already).
    fn announce_connection(
        &mut self,
        topics: &Topics,
        relay_closed: Option<bool>,
        state_topic: &str,
    ) -> Vec<Message> {
        let mut messages = vec![Message::new(topics.availability(), "online", true, 1)];
        if self.discovery {
            messages.extend(self.announcer.all(&self.last.reading));
        }
        self.policy.forget();
        let last = &self.last;
        let extras = Extras {
            power_w: last.power_w,
        };
        messages.extend(
            self.policy
                .on_reading(&last.reading, &last.ts, last.at, extras)
                .into_iter()
                .filter(|m| m.topic != state_topic),
        );
        if let Some(closed) = relay_closed {
            messages.push(super::relay_message(topics, closed));
        }
        messages
    }
}

/// The daemon's CONNECT: the Last Will, keep-alive and credentials.
fn connect_options(settings: &MqttSettings, topics: &Topics, id: &str) -> ConnectOptions {
    let mut connect = rumqttc::Connect::new(
        settings
            .client_id
            .clone()
            .unwrap_or_else(|| format!("linkymon-{id}")),
    );
    connect.keep_alive = 30;
    connect.clean_session = true;
    connect.last_will = Some(LastWill::new(
        topics.availability(),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    connect.login = settings.username.as_ref().map(|user| {
        Login::new(
            user.clone(),
            settings
                .password
                .as_ref()
                .map(|p| p.expose().to_owned())
                .unwrap_or_default(),
        )
    });
    ConnectOptions {
        host: settings.host.clone(),
        port: settings.port,
        tls: settings.tls.clone(),
        connect,
        timeout: NETWORK_TIMEOUT,
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
            if !self.labels.contains(&*e.label) {
                self.labels.insert(e.label.to_string());
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
