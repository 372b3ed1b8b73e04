//! The publisher: turns readings into messages with the [`Policy`], keeps `state` messages in
//! the [`Outbox`] until the broker acknowledges them, and keeps one [`Link`] to the broker:
//! it reconnects with backoff, and on every CONNACK says `online`, says the line's state,
//! announces discovery and subscribes to Home Assistant's status, whose `online` makes it
//! announce again. It also watches the line: `<base>/<id>/line` says `OFF` once no frame came
//! for [`LINE_SILENCE`], and `ON` again with the next frame.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{LastWill, QoS};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Message;
use super::discovery;
use super::link::{self, Broker, Link, LinkEvent};
use super::outbox::{Outbox, StateRef};
use super::policy::{Diag, Estimates, Policy};
use super::sequence::Reservation;
use super::spool::{Spool, SpoolStats};
use super::topics::Topics;
use crate::meter::{MeterStats, Reading};
use crate::source::Backoff;
use crate::tic::Stats;

/// How to reach the broker and name things on it.
#[derive(Debug, Clone)]
pub struct MqttSettings {
    /// Where the broker is and how to log in.
    pub broker: Broker,
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
    /// `publish.backlog_rate`: spooled messages per second, 0 for no limit.
    pub backlog_rate: u32,
    /// `publish.drain_timeout`: how long a finished replay waits for the broker.
    pub drain_timeout: Duration,
    /// `relay.gpio` is set: announce and publish the relay contact.
    pub relay: bool,
    /// Shared with the bridge status's connection: an outage is said once.
    pub outages: link::Outages,
}

/// One decoded frame on its way to the broker, with what the acquisition loop measured.
#[derive(Debug, Clone)]
pub struct MeterSample {
    /// The typed frame.
    pub reading: Arc<Reading>,
    /// When its last byte arrived, ISO 8601 with the local offset.
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

/// Spooled messages in flight at once: enough to keep a broker busy, few enough that live
/// publications never queue behind more than a moment of backlog.
const SPOOL_WINDOW: usize = 32;

/// How often the backlog is drained: `backlog_rate / 10` messages every 100 ms.
const DRAIN_PERIOD: Duration = Duration::from_millis(100);

/// Spooled messages queued per turn without a rate limit, between live readings.
const UNLIMITED_BATCH: usize = 8;

/// Home Assistant's `online` makes the publisher announce discovery again at most this often;
/// more `online`s meanwhile make one announcement.
const REDISCOVERY_PERIOD: Duration = Duration::from_secs(10);

/// Publications that may wait to be written (a slow broker) before the publisher stops
/// taking readings; the acquisition loop then counts what it cannot hand over.
const MAX_UNWRITTEN: usize = 256;

/// At the first connection, how long the retained discovery configs of this meter are
/// collected before those no longer announced are cleared.
const STALE_SCAN: Duration = Duration::from_secs(3);

/// QoS 1 publications in flight at once on a link.
const MAX_IN_FLIGHT: u16 = 128;

/// How long the last messages and DISCONNECT may take when the publisher stops.
const CLOSING: Duration = Duration::from_secs(2);

/// How long the line may stay without a frame before `<base>/<id>/line` says `OFF`. A meter
/// sends a frame every 1 to 2 s (historic) or 1 s (standard); 30 s is many frames lost in a
/// row, not a bad checksum or two. Measured on a tokio timer, in real time whatever the
/// source: a paced replay or a demo at 60× sends frames at least as often as the meter, and
/// a replay's end is no silence (the publisher stops and says `offline`).
pub const LINE_SILENCE: Duration = Duration::from_secs(30);

/// The file in `mqtt.spool_dir` that says what `<base>/<id>/line` says, `ON` or `OFF`, for a
/// health check without an MQTT client (docker/compose.yaml): `OFF` from the start until the
/// first frame, after [`LINE_SILENCE`] without one, and once the publisher stopped, so a
/// file left by a daemon that died is never taken for a live line by the next one.
pub const LINE_FILE: &str = "line";

/// Publishes readings until `readings` closes (the source ended) or `shutdown` fires; then
/// says `offline`, disconnects, leaves what the broker did not acknowledge in `spool` and
/// returns. A broker that is unreachable never stops it.
pub async fn publish(
    settings: MqttSettings,
    spool: Spool,
    mut readings: mpsc::Receiver<MeterSample>,
    mut relay: watch::Receiver<Option<bool>>,
    shutdown: CancellationToken,
) {
    let started = Instant::now();
    let mut line = Line::new(&spool.dir().join(LINE_FILE));
    // The Last Will names the meter, so the connection waits for the first frame's id.
    let first = tokio::select! {
        first = next_with_id(&mut readings) => first,
        () = shutdown.cancelled() => None,
    };
    let Some(first) = first else { return };
    let Some(mut id) = first.reading.meter.clone() else {
        return;
    };
    line.heard();
    let mut topics = Topics::new(&settings.base_topic, &id);
    let status_topic = format!("{}/status", settings.discovery_prefix);
    let mut connector = Connector::new(&settings, &topics, &id);
    let mut out = Delivery {
        link: Some(connector.open()),
        outbox: Outbox::new(spool),
        state_topic: topics.state(),
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let (reservation, first_seq) = Reservation::open(out.outbox.dir(), now_ms);
    let mut core = Core {
        policy: Policy::new(topics.clone(), settings.interval.as_secs_f64())
            .with_first_seq(first_seq),
        reservation,
        announcer: Announcer::new(&settings),
        discovery: settings.discovery,
        last: first,
    };
    core.announcer.learn(&core.last.reading);
    let first_messages = core.messages_for_last();
    out.send_all(first_messages); // not connected yet: the state goes to the spool
    let mut diag_tick =
        tokio::time::interval_at(started + Duration::from_secs(60), Duration::from_secs(60));
    let unlimited = settings.backlog_rate == 0;
    let rate = settings.backlog_rate.max(1);
    let drain_period = DRAIN_PERIOD.max(Duration::from_secs(1) / rate);
    let drain_batch = (f64::from(rate) * drain_period.as_secs_f64())
        .round()
        .max(1.0) as usize;
    let mut drain_tick = tokio::time::interval(drain_period);
    drain_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Home Assistant said `online`: discovery is announced again at once, then at most once
    // per REDISCOVERY_PERIOD however many `online`s arrive (one pending at most).
    let mut rediscover_at: Option<Instant> = None;
    let mut last_rediscovery: Option<Instant> = None;
    // A message on Home Assistant's status topic was too large to read: the broker keeps it
    // and would end every connection, so the status is not followed any more.
    let mut follow_status = true;
    // At the first connection: the retained configs of this meter seen so far, and when the
    // ones this run does not announce are cleared (relay unset, contract changed).
    let mut config_filter = discovery::config_filter(&id, &core.announcer.context);
    let mut stale_scan: Option<(Instant, BTreeSet<String>)> = None;
    let mut stale_scanned = !settings.discovery;
    // The `offline` of meters this line carried before (a meter swap).
    let mut retired: Vec<Message> = Vec::new();
    let mut sync_tick = tokio::time::interval(Duration::from_secs(1));
    sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut source_ended = false;
    let mut relay_open = true;
    // When the source ended, the time to stop even if the broker did not take everything.
    let mut give_up_at: Option<Instant> = None;
    loop {
        // A replay ended: stop once the broker has everything, or gave up waiting for it.
        if source_ended && out.is_up() && out.outbox.idle() {
            break;
        }
        tokio::select! {
            next = readings.recv(), if !source_ended && out.has_room() => match next {
                Some(p) => {
                    if let Some(new_id) = p.reading.meter.clone().filter(|new_id| *new_id != id) {
                        // Another meter on the line (Enedis replaced it, or two lines are
                        // mixed): a new meter, with its own topics, entities, Last Will and
                        // `availability`; the old one is said `offline`.
                        info!(old = %id, new = %new_id, "another meter id on the line: publishing for the new meter");
                        let offline = Message::new(topics.availability(), "offline", true, 1);
                        if let Some(mut link) = out.link.take().filter(|l| l.is_up()) {
                            let _ = link.publish(offline.topic.clone(), QoS::AtLeastOnce, true, offline.payload.clone(), None);
                            let outbox = &mut out.outbox;
                            link.close(CLOSING, |state| outbox.acked(state)).await;
                        }
                        // Said again at every connection: the broker may not have had it.
                        retired.push(offline);
                        out.lose_link();
                        id = new_id;
                        topics = Topics::new(&settings.base_topic, &id);
                        connector = Connector::new(&settings, &topics, &id);
                        let next_seq = core.policy.next_seq();
                        core.policy = Policy::new(topics.clone(), settings.interval.as_secs_f64())
                            .with_first_seq(next_seq);
                        core.announcer = Announcer::new(&settings);
                        out.state_topic = topics.state();
                        config_filter = discovery::config_filter(&id, &core.announcer.context);
                        stale_scan = None;
                        stale_scanned = !settings.discovery;
                        rediscover_at = None;
                    }
                    if line.heard() {
                        info!("frames arrive again");
                        out.send_all(vec![super::line_message(&topics, true)]);
                    }
                    core.take(p, &mut out);
                }
                None => {
                    source_ended = true;
                    give_up_at = Some(Instant::now() + settings.drain_timeout);
                    if !out.outbox.idle() {
                        info!(backlog = out.outbox.stats().backlog, "the source ended; waiting up to publish.drain_timeout for the broker to take the spool");
                    }
                }
            },
            () = sleep_until(give_up_at) => break,
            () = sleep_until(line.silent_at()), if !source_ended => {
                // Frames waiting in the channel (the publisher was behind a slow broker) are
                // no silence: the line is heard, only not read yet.
                if readings.is_empty() {
                    warn!("no frame from the meter for {}s: the line is silent (a wire off, a meter fault?)", LINE_SILENCE.as_secs());
                    line.silent();
                    out.send_all(vec![super::line_message(&topics, false)]);
                } else {
                    line.last = Instant::now();
                }
            }
            () = connector.wait(), if out.link.is_none() => out.link = Some(connector.open()),
            event = next_event(&mut out.link) => match event {
                LinkEvent::Up => {
                    connector.connected();
                    let relay_closed = *relay.borrow();
                    let messages =
                        core.announce_connection(&topics, line.on, relay_closed, &out.state_topic);
                    out.send_all(messages);
                    out.send_all(retired.clone());
                    out.send_all(vec![core.diag(started, out.outbox.stats())]);
                    rediscover_at = None;
                    if let Some(link) = out.link.as_mut().filter(|_| follow_status) {
                        let _ = link.subscribe(&status_topic);
                    }
                    if let Some(link) = out.link.as_mut().filter(|_| !stale_scanned) {
                        let _ = link.subscribe(&config_filter);
                        stale_scan = Some((Instant::now() + STALE_SCAN, BTreeSet::new()));
                        stale_scanned = true;
                    }
                }
                // Room for more, and acknowledgements: the next turn may drain.
                LinkEvent::Progress(states) => states.into_iter().for_each(|s| out.acked(s)),
                LinkEvent::Message(p) => {
                    if let Some((_, retained)) = &mut stale_scan
                        && p.retain
                        && !p.payload.is_empty()
                        && p.topic.ends_with("/config")
                    {
                        retained.insert(p.topic.clone());
                    }
                    if core.discovery && p.topic == status_topic && p.payload.as_ref() == b"online" {
                        let slot = last_rediscovery.map_or(Instant::now(), |t| t + REDISCOVERY_PERIOD);
                        rediscover_at.get_or_insert(slot);
                    }
                }
                LinkEvent::Down(e) => {
                    out.lose_link();
                    if follow_status && incoming_too_large(&e) {
                        follow_status = false;
                        warn!(topic = %status_topic, "a message larger than {} kB arrived, most likely a retained one on Home Assistant's status topic: its status is not followed any more (clear it with: mosquitto_pub -r -n -t {status_topic})", link::MAX_PACKET / 1024);
                    }
                    connector.failed(&e);
                }
            },
            changed = relay.changed(), if relay_open => match changed {
                Ok(()) => {
                    if let Some(closed) = *relay.borrow_and_update() {
                        out.send_all(vec![super::relay_message(&topics, closed)]);
                    }
                }
                Err(_) => relay_open = false,
            },
            () = sleep_until(stale_scan.as_ref().map(|(at, _)| *at)), if out.is_up() => {
                let retained = stale_scan.take().map(|(_, seen)| seen).unwrap_or_default();
                if let Some(link) = &mut out.link {
                    let _ = link.unsubscribe(&config_filter);
                }
                let announced: Vec<String> = core
                    .announcer
                    .all(&core.last.reading)
                    .into_iter()
                    .map(|m| m.topic)
                    .collect();
                let clears =
                    discovery::stale_config_clears(&id, announced, retained, &core.announcer.context);
                if !clears.is_empty() {
                    info!(count = clears.len(), "clearing the discovery configs of entities this run does not announce");
                }
                out.send_all(clears);
            }
            () = sleep_until(rediscover_at), if out.is_up() => {
                rediscover_at = None;
                last_rediscovery = Some(Instant::now());
                let configs = core.announcer.all(&core.last.reading);
                out.send_all(configs);
            }
            () = std::future::ready(()), if unlimited && out.can_drain() => out.drain(UNLIMITED_BATCH),
            _ = drain_tick.tick(), if !unlimited && out.can_drain() => out.drain(drain_batch),
            _ = sync_tick.tick(), if out.outbox.needs_sync() => out.outbox.sync(),
            _ = diag_tick.tick() => out.send_all(vec![core.diag(started, out.outbox.stats())]),
            () = shutdown.cancelled() => break,
        }
    }
    // Stopping: say `offline` and DISCONNECT. If that cannot be written, the broker publishes
    // the Last Will instead.
    if let Some(mut link) = out.link.take().filter(|l| l.is_up()) {
        let offline = link.publish(
            topics.availability(),
            QoS::AtLeastOnce,
            true,
            "offline".to_owned(),
            None,
        );
        if offline.is_ok() {
            let outbox = &mut out.outbox;
            link.close(CLOSING, |state| outbox.acked(state)).await;
        }
    }
    // What the broker did not acknowledge waits on disk.
    out.outbox.spill();
    out.outbox.sync();
    line.silent();
}

/// Whether a connection ended on an incoming packet larger than [`link::MAX_PACKET`].
fn incoming_too_large(e: &rumqttc::ConnectionError) -> bool {
    matches!(
        e,
        rumqttc::ConnectionError::MqttState(rumqttc::StateError::Deserialization(
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(_)
        ))
    )
}

/// Ready at `at`; never without it.
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The next event of the link; never ready without one.
async fn next_event(link: &mut Option<Link<StateRef>>) -> LinkEvent<StateRef> {
    match link {
        Some(link) => link.next().await,
        None => std::future::pending().await,
    }
}

/// The publisher's side of the connection: the current link, if any, and the outbox.
struct Delivery {
    link: Option<Link<StateRef>>,
    outbox: Outbox,
    state_topic: String,
}

impl Delivery {
    fn is_up(&self) -> bool {
        self.link.as_ref().is_some_and(Link::is_up)
    }

    /// Queues messages on the link. `state` messages wait in the spool while the link is not
    /// up or older ones still wait; the rest needs a link (retained values, flags and
    /// discovery are sent again on every CONNACK).
    fn send_all(&mut self, messages: Vec<Message>) {
        for m in messages {
            if m.topic == self.state_topic {
                if self.is_up() && !self.outbox.spool_has_unsent() {
                    let state = self.outbox.keep_live(&m);
                    self.send(m, Some(state));
                } else {
                    self.outbox.store(&m);
                }
            } else if self.is_up() {
                self.send(m, None);
            }
        }
    }

    /// Queues one message on the link.
    fn send(&mut self, m: Message, state: Option<StateRef>) {
        let Some(link) = &mut self.link else {
            return;
        };
        let qos = if m.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        if let Err(e) = link.publish(m.topic, qos, m.retain, m.payload, state) {
            // The request queue is full (the publisher keeps well below it): a `state` message
            // is still in the outbox and goes again on the next link; the rest is sent again
            // on the next CONNACK.
            warn!(error = %e, "cannot queue an MQTT publication");
        }
    }

    /// Whether the link can take more without queueing behind a slow broker.
    fn has_room(&self) -> bool {
        self.link
            .as_ref()
            .is_none_or(|l| l.unwritten() < MAX_UNWRITTEN)
    }

    /// Whether spooled messages can go out now.
    fn can_drain(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|l| l.is_up() && l.unwritten() == 0)
            && self.outbox.spooled_in_flight() < SPOOL_WINDOW
            && self.outbox.has_unsent()
    }

    /// Sends up to `batch` spooled messages, oldest first, within the in-flight window.
    fn drain(&mut self, batch: usize) {
        for _ in 0..batch {
            if self.outbox.spooled_in_flight() >= SPOOL_WINDOW || !self.outbox.has_unsent() {
                break;
            }
            let Some((m, state)) = self.outbox.next_unsent() else {
                break;
            };
            self.send(m, Some(state));
        }
    }

    /// The broker acknowledged a `state` message.
    fn acked(&mut self, state: StateRef) {
        self.outbox.acked(state);
    }

    /// The link is gone: what was not acknowledged is sent again on the next link.
    fn lose_link(&mut self) {
        self.link = None;
        self.outbox.spill();
    }
}

/// Opens links, one at a time, with backoff after a failure, and says when the broker is
/// lost and found again.
struct Connector {
    options: rumqttc::MqttOptions,
    backoff: Backoff,
    /// When the next attempt may start.
    retry_at: Instant,
    outages: link::Outages,
    broker: Broker,
    client_id: String,
    /// When the current link came up.
    up_since: Option<Instant>,
    /// Links in a row that the broker closed soon after accepting them.
    short_links: u32,
    /// The likely take-over was said.
    takeover_said: bool,
}

/// A link the broker closes sooner than this after accepting it counts as short.
const SHORT_LINK: Duration = Duration::from_secs(10);

/// Short links in a row that point at another client with the same client id: MQTT lets a
/// new connection with a client id take over the old one, so two daemons with the same id
/// (two boxes on one meter, a copied configuration) knock each other off forever.
const TAKEOVER_LINKS: u32 = 3;

impl Connector {
    /// The daemon's CONNECT: a clean session, and the Last Will that says `offline`.
    fn new(settings: &MqttSettings, topics: &Topics, id: &str) -> Self {
        let client_id = settings
            .client_id
            .clone()
            .unwrap_or_else(|| format!("linkymon-{id}"));
        let mut options = link::options(&settings.broker, client_id.clone());
        options.set_clean_session(true);
        options.set_inflight(MAX_IN_FLIGHT);
        options.set_last_will(LastWill::new(
            topics.availability(),
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
        Connector {
            options,
            backoff: Backoff::default(),
            retry_at: Instant::now(),
            outages: settings.outages.clone(),
            broker: settings.broker.clone(),
            client_id,
            up_since: None,
            short_links: 0,
            takeover_said: false,
        }
    }

    fn open(&self) -> Link<StateRef> {
        Link::open(self.options.clone())
    }

    /// Ready when the next attempt may start.
    async fn wait(&self) {
        tokio::time::sleep_until(self.retry_at).await;
    }

    fn connected(&mut self) {
        self.up_since = Some(Instant::now());
        self.backoff.reset();
        self.outages.up();
        info!(broker = %self.broker.address(), "connected to the MQTT broker");
    }

    /// An attempt failed or a link was lost: says so once, then tries again after the backoff.
    fn failed(&mut self, e: &rumqttc::ConnectionError) {
        if let Some(up_since) = self.up_since.take() {
            if up_since.elapsed() < SHORT_LINK {
                self.short_links += 1;
            } else {
                self.short_links = 0;
            }
            if self.short_links >= TAKEOVER_LINKS && !self.takeover_said {
                warn!(client_id = %self.client_id, "the broker closed the connection soon after accepting it, {TAKEOVER_LINKS} times in a row: another client most likely uses the same client id (a second linkymon for this meter?); give each its own mqtt.client_id");
                self.takeover_said = true;
            }
        }
        self.outages.down(&self.broker, e);
        self.retry_at = Instant::now() + self.backoff.next_delay();
    }
}

/// What the publisher knows beyond the link: the policy, what Home Assistant was told, and
/// the latest reading (announced again on every connection).
struct Core {
    policy: Policy,
    /// Keeps the `seq` numbers the policy hands out saved ahead of use.
    reservation: Reservation,
    announcer: Announcer,
    discovery: bool,
    last: MeterSample,
}

impl Core {
    /// Turns one reading into messages (discovery for new labels first) and queues them.
    fn take(&mut self, p: MeterSample, out: &mut Delivery) {
        if self.announcer.learn(&p.reading) && self.discovery && out.is_up() {
            out.send_all(self.announcer.changed(&p.reading));
        }
        self.last = p;
        let messages = self.messages_for_last();
        out.send_all(messages);
    }

    /// The policy's messages for the latest reading, their `seq` saved ahead of use.
    fn messages_for_last(&mut self) -> Vec<Message> {
        let last = &self.last;
        let estimates = Estimates {
            power_w: last.power_w,
        };
        let messages = self
            .policy
            .on_reading(&last.reading, &last.ts, last.at, estimates);
        self.reservation.cover(self.policy.next_seq());
        messages
    }

    /// The `diag` message now.
    fn diag(&self, started: Instant, spool: SpoolStats) -> Message {
        self.policy.diag(&Diag {
            tic: self.last.tic,
            meter: self.last.meter,
            mode: self.last.mode,
            uptime_s: started.elapsed().as_secs(),
            frames_not_published: self.last.frames_not_published,
            spool,
        })
    }

    /// What a new connection gets: `online`, the line's state (the second availability topic of
    /// the entities: both must be there), discovery, and the latest retained values (they
    /// went nowhere without a link, and a restarted broker may have lost them; the `state` of
    /// that reading went already).
    fn announce_connection(
        &mut self,
        topics: &Topics,
        line_on: bool,
        relay_closed: Option<bool>,
        state_topic: &str,
    ) -> Vec<Message> {
        let mut messages = vec![
            Message::new(topics.availability(), "online", true, 1),
            super::line_message(topics, line_on),
        ];
        if self.discovery {
            messages.extend(self.announcer.all(&self.last.reading));
        }
        self.policy.forget();
        messages.extend(
            self.messages_for_last()
                .into_iter()
                .filter(|m| m.topic != state_topic),
        );
        if let Some(closed) = relay_closed {
            messages.push(super::relay_message(topics, closed));
        }
        messages
    }
}

/// Whether frames arrive: the state `<base>/<id>/line` and [`LINE_FILE`] say.
struct Line {
    /// `ON`: a frame came less than [`LINE_SILENCE`] ago.
    on: bool,
    /// When the last frame came.
    last: Instant,
    /// [`LINE_FILE`] in the spool directory.
    file: PathBuf,
    /// Writing the file failed and was said: not said again.
    file_failed: bool,
}

impl Line {
    /// No frame yet: `OFF`, in the file too.
    fn new(file: &Path) -> Self {
        let mut line = Line {
            on: false,
            last: Instant::now(),
            file: file.to_owned(),
            file_failed: false,
        };
        line.save();
        line
    }

    /// A frame came; true when the line was `OFF` (it is `ON` now).
    fn heard(&mut self) -> bool {
        self.last = Instant::now();
        if self.on {
            return false;
        }
        self.on = true;
        self.save();
        true
    }

    /// No frame for [`LINE_SILENCE`], or the publisher stops: `OFF`.
    fn silent(&mut self) {
        self.on = false;
        self.save();
    }

    /// When the line is silent unless a frame comes first; never while it is `OFF`.
    fn silent_at(&self) -> Option<Instant> {
        self.on.then_some(self.last + LINE_SILENCE)
    }

    /// Writes the state to the file, whole (a reader never sees half of it).
    fn save(&mut self) {
        let text: &[u8] = if self.on { b"ON\n" } else { b"OFF\n" };
        if let Err(e) = crate::files::write_atomic(&self.file, text)
            && !std::mem::replace(&mut self.file_failed, true)
        {
            warn!(path = %self.file.display(), error = %e, "cannot write the line's state for health checks");
        }
    }
}

async fn next_with_id(readings: &mut mpsc::Receiver<MeterSample>) -> Option<MeterSample> {
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
    /// The energy leaves seen since start ([`discovery::energy_leaves`]).
    energy: BTreeSet<String>,
    sent: HashMap<String, String>,
}

impl Announcer {
    fn new(settings: &MqttSettings) -> Self {
        Announcer {
            context: discovery::Context::new(&settings.base_topic, &settings.discovery_prefix)
                .with_relay(settings.relay),
            labels: BTreeSet::new(),
            energy: BTreeSet::new(),
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
        for leaf in discovery::energy_leaves(reading) {
            new |= self.energy.insert(leaf);
        }
        new
    }

    fn configs(&self, reading: &Reading) -> Vec<Message> {
        let Some(id) = reading.meter.as_deref() else {
            return Vec::new();
        };
        let contract = discovery::Contract::from_reading(reading);
        let mut configs =
            discovery::config_messages(id, reading.mode, &contract, &self.labels, &self.context);
        configs.extend(discovery::energy_config_messages(
            id,
            reading.mode,
            &contract,
            &self.energy,
            &self.context,
        ));
        configs
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
