//! `linkymon logger`: `state` messages in over MQTT; daily logs, graph pages, the retained
//! `today` message and its Home Assistant entities out.
//!
//! What is logged and where is [`Logbook`]'s; the MQTT session is [`crate::logger::mqtt`]'s;
//! the database is [`crate::logger::database`]'s. This file runs them together: messages as
//! they come, pages every `logger.pages_interval` and just after local midnight, and a stop
//! that loses nothing the broker already handed over.
//!
//! With `logger.database`, each message is acknowledged to the broker only once its row is
//! committed (manual acks), so the broker keeps what the database has not stored yet. With
//! `logger.files: false` there is no logbook: no daily logs, pages, `today` or discovery.

use std::collections::HashSet;
use std::time::Duration;

use jiff::Timestamp;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{Config, LoggerConfig};
use crate::logger::database::{self, Entry, Row, Sink};
use crate::logger::mqtt::{self, Ack, LinkEvent, Subscription};
use crate::logger::{Logbook, State};

/// How long a stop waits for the broker to see the logger's DISCONNECT.
const DISCONNECT_WAIT: Duration = Duration::from_secs(3);

/// How long after local midnight the pages are rebuilt, so that "today" is already the new day.
const PAST_MIDNIGHT: Duration = Duration::from_millis(500);

/// How long a stop waits for the database to store what it holds (what it could not store is
/// not acknowledged, so the broker sends it again to the next run).
const STORE_WAIT: Duration = Duration::from_secs(5);

/// How often, at most, the `today` messages go out: a burst of lines sends one per second.
const TODAY_EVERY: Duration = Duration::from_secs(1);

/// Runs the logger until `shutdown` fires. With `mqtt.embedded_broker: true` its broker is the
/// daemon's embedded one on this machine, reached on its MQTT 5 listener (the logger speaks
/// MQTT 5 only).
pub async fn run(mut config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    if config.mqtt.embedded_broker {
        crate::broker::point_at_v5_listener(&mut config.mqtt)?;
    }
    let mut logbook = match config.logger.files {
        true => Some(Logbook::open(&config)?),
        false => None,
    };
    let mut restored = Vec::new();
    if let Some(logbook) = &mut logbook {
        restored = logbook.restore_pending()?;
        logbook.rebuild_pages(Timestamp::now());
    }

    let m = &config.mqtt;
    let session = mqtt::Session::of(&config.logger, &m.base_topic);
    let mqtt::Link {
        client,
        mut events,
        poller,
    } = mqtt::connect(m, &session)?;
    mqtt::send(&client, restored);
    let mut store = database::Settings::from_config(&config)
        .map(|settings| Store::start(settings, client.clone(), &config.logger));

    let state_filter = match &config.logger.share_group {
        Some(group) => format!("$share/{group}/{}/+/state", m.base_topic),
        None => format!("{}/+/state", m.base_topic),
    };
    // `<base>/+/state` matches the daemon's `<base>/bridge/state` (`online`/`offline`) too:
    // that one is no meter's and is left out rather than refused as a bad state.
    let bridge_topic = crate::publish::topics::bridge_state(&m.base_topic);
    let status_topic = format!("{}/status", m.discovery_prefix);
    // Discovery is the logbook's (its `today` entities): without files, no status to follow.
    let discovery = m.discovery && logbook.is_some();
    // The daemon never retains a `state`: a retained one is someone else's, not read. Home
    // Assistant's status is retained, and says whether to announce.
    let subscriptions = [
        Subscription {
            filter: &state_filter,
            retained: false,
        },
        Subscription {
            filter: &status_topic,
            retained: true,
        },
    ];
    let subscriptions = if discovery {
        &subscriptions[..]
    } else {
        &subscriptions[..1]
    };
    let mut pages_tick =
        tokio::time::interval(config.logger.pages_interval.max(Duration::from_secs(1)));
    pages_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    pages_tick.reset();
    let mut today_tick = tokio::time::interval(TODAY_EVERY);
    today_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let until_midnight = logbook.as_ref().map_or(Duration::from_secs(3600), |l| {
            l.until_next_midnight(Timestamp::now())
        });
        tokio::select! {
            event = events.recv() => match event {
                Some(LinkEvent::Connected) => {
                    mqtt::subscribe(&client, subscriptions);
                    if discovery && let Some(logbook) = &mut logbook {
                        mqtt::send(&client, logbook.announce_all());
                    }
                }
                Some(LinkEvent::Message { topic, payload, retained, ack }) => {
                    // A retained `state` is someone else's: the daemon never retains one.
                    let is_state = topic != status_topic && topic != bridge_topic && !retained;
                    if let Some(logbook) = &mut logbook {
                        if is_state {
                            logbook.on_state(&payload);
                        } else if topic == status_topic && payload == "online" && discovery {
                            mqtt::send(&client, logbook.announce_all());
                        }
                    }
                    if let Some(store) = &mut store {
                        store.keep(is_state.then_some(payload.as_str()), ack).await;
                    }
                }
                Some(LinkEvent::Oversized { topic, bytes, ack }) => {
                    if let Some(logbook) = &mut logbook {
                        logbook.oversized(&topic, bytes);
                    }
                    if let Some(store) = &mut store {
                        store.keep(None, ack).await;
                    }
                }
                None => break,
            },
            _ = today_tick.tick(), if logbook.is_some() => {
                if let Some(logbook) = &mut logbook {
                    mqtt::send(&client, logbook.take_today());
                }
            }
            _ = pages_tick.tick() => {
                if let Some(logbook) = &mut logbook {
                    logbook.rebuild_pages(Timestamp::now());
                    logbook.save_seqs();
                    if let Some(summary) = logbook.refusal_summary() {
                        info!("{summary}");
                    }
                }
                if let Some(store) = &mut store {
                    store.summary();
                }
            }
            () = tokio::time::sleep(until_midnight), if logbook.is_some() => {
                tokio::time::sleep(PAST_MIDNIGHT).await;
                if let Some(logbook) = &mut logbook {
                    logbook.rebuild_pages(Timestamp::now());
                }
            }
            () = shutdown.cancelled() => break,
        }
    }
    if let Some(logbook) = &mut logbook {
        mqtt::send(&client, logbook.take_today());
    }
    // The acknowledgements of what the database stored go out before the DISCONNECT.
    if let Some(store) = store {
        store.close().await;
    }
    let _ = client.try_disconnect();
    // Messages already received (and acknowledged) are logged before the unfinished line is
    // saved: the broker will not send them again.
    let drain = async {
        while let Some(event) = events.recv().await {
            if let LinkEvent::Message {
                topic,
                payload,
                retained: false,
                ..
            } = event
                && topic != status_topic
                && topic != bridge_topic
                && let Some(logbook) = &mut logbook
            {
                logbook.on_state(&payload);
            }
        }
    };
    if tokio::time::timeout(DISCONNECT_WAIT, drain).await.is_err() {
        warn!("the broker did not see the logger's disconnect within 3 s");
    }
    if let Some(logbook) = &mut logbook {
        logbook.close(Timestamp::now());
        if let Some(summary) = logbook.refusal_summary() {
            info!("{summary}");
        }
    }
    poller.abort(); // already over, unless the broker was unreachable
    Ok(())
}

/// `logger.database`: the rows on their way to the database, and the acknowledgements on
/// their way back to the broker.
struct Store {
    sink: Sink<Ack>,
    /// Sends the acknowledgements of committed rows, in order.
    acker: tokio::task::JoinHandle<()>,
    /// The meters stored so far; at most `logger.max_meters`.
    meters: HashSet<String>,
    max_meters: usize,
    /// `logger.meter`: store only this one.
    only: Option<String>,
    /// States not stored (unreadable, no `seq`, a meter too many) since the last summary.
    dropped: u64,
}

impl Store {
    fn start(
        settings: database::Settings,
        client: rumqttc::v5::AsyncClient,
        logger: &LoggerConfig,
    ) -> Store {
        let (sink, mut committed) = Sink::<Ack>::start(settings);
        let acker = tokio::spawn(async move {
            while let Some(acks) = committed.recv().await {
                for ack in acks {
                    ack.send(&client).await;
                }
            }
        });
        Store {
            sink,
            acker,
            meters: HashSet::new(),
            max_meters: logger.max_meters,
            only: logger.meter.clone(),
            dropped: 0,
        }
    }

    /// Hands one message over: its row when `state` is a `state` to store; it is acknowledged
    /// once that row is committed (or at once, in order, when there is none).
    async fn keep(&mut self, state: Option<&str>, ack: Option<Ack>) {
        let row = state.and_then(|payload| {
            let row = State::parse(payload)
                .ok()
                .filter(|s| self.admits(&s.meter))
                .and_then(|s| Row::from_state(&s));
            if row.is_none() {
                self.dropped += 1;
            }
            row
        });
        if let Some(ack) = ack {
            self.sink.send(Entry { row, ack }).await;
        }
    }

    /// Whether `meter` is stored: `logger.meter` if set, else the first `logger.max_meters`.
    fn admits(&mut self, meter: &str) -> bool {
        if let Some(only) = &self.only {
            return only == meter;
        }
        if self.meters.contains(meter) {
            return true;
        }
        if self.meters.len() < self.max_meters {
            self.meters.insert(meter.to_owned());
            return true;
        }
        false
    }

    /// Logs how many states were not stored since the last time, if any.
    fn summary(&mut self) {
        if self.dropped > 0 {
            info!(
                "{} states not stored in the database (unreadable, without `seq`, or of a meter \
                 past logger.max_meters = {})",
                self.dropped, self.max_meters
            );
            self.dropped = 0;
        }
    }

    /// Lets the database store what it holds and its acknowledgements go out, for at most
    /// [`STORE_WAIT`].
    async fn close(mut self) {
        self.summary();
        let stored = self.sink.stored();
        drop(self.sink);
        let mut acker = self.acker;
        if tokio::time::timeout(STORE_WAIT, &mut acker).await.is_err() {
            warn!(
                "the database did not store everything within {STORE_WAIT:?}; the rest stays \
                 with the broker, unacknowledged, for the next run"
            );
            acker.abort();
        }
        let stored = stored.load(std::sync::atomic::Ordering::Relaxed);
        info!("{stored} readings stored in the database by this run");
    }
}
