//! `linkymon logger`: `state` messages in over MQTT; daily logs, graph pages, the retained
//! `today` message and its Home Assistant entities out.
//!
//! What is logged and where is [`Logbook`]'s; the MQTT session is [`crate::logger::mqtt`]'s.
//! This file runs them together: messages as they come, pages every `logger.pages_interval`
//! and just after local midnight, and a stop that loses nothing the broker already handed over.

use std::time::Duration;

use jiff::Timestamp;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Config;
use crate::logger::Logbook;
use crate::logger::mqtt::{self, LinkEvent, Subscription};

/// How long a stop waits for the broker to see the logger's DISCONNECT.
const DISCONNECT_WAIT: Duration = Duration::from_secs(3);

/// How long after local midnight the pages are rebuilt, so that "today" is already the new day.
const PAST_MIDNIGHT: Duration = Duration::from_millis(500);

/// How often, at most, the `today` messages go out: a burst of lines sends one per second.
const TODAY_EVERY: Duration = Duration::from_secs(1);

/// Runs the logger until `shutdown` fires. With `mqtt.embedded_broker: true` its broker is the
/// daemon's embedded one on this machine, reached on its MQTT 5 listener (the logger speaks
/// MQTT 5 only).
pub async fn run(mut config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    if config.mqtt.embedded_broker {
        crate::broker::point_at_v5_listener(&mut config.mqtt)?;
    }
    let mut logbook = Logbook::open(&config)?;
    let restored = logbook.restore_pending()?;
    logbook.rebuild_pages(Timestamp::now());

    let m = &config.mqtt;
    let mqtt::Link {
        client,
        mut events,
        poller,
    } = mqtt::connect(m)?;
    mqtt::send(&client, restored);

    let state_topic = format!("{}/+/state", m.base_topic);
    // `<base>/+/state` matches the daemon's `<base>/bridge/state` (`online`/`offline`) too:
    // that one is no meter's and is left out rather than refused as a bad state.
    let bridge_topic = crate::publish::topics::bridge_state(&m.base_topic);
    let status_topic = format!("{}/status", m.discovery_prefix);
    // The daemon never retains a `state`: a retained one is someone else's, not read. Home
    // Assistant's status is retained, and says whether to announce.
    let subscriptions = [
        Subscription {
            filter: &state_topic,
            retained: false,
        },
        Subscription {
            filter: &status_topic,
            retained: true,
        },
    ];
    let mut pages_tick =
        tokio::time::interval(config.logger.pages_interval.max(Duration::from_secs(1)));
    pages_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    pages_tick.reset();
    let mut today_tick = tokio::time::interval(TODAY_EVERY);
    today_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let until_midnight = logbook.until_next_midnight(Timestamp::now());
        tokio::select! {
            event = events.recv() => match event {
                Some(LinkEvent::Connected) => {
                    mqtt::subscribe(&client, &subscriptions);
                    if m.discovery {
                        mqtt::send(&client, logbook.announce_all());
                    }
                }
                Some(LinkEvent::Message { topic, .. }) if topic == bridge_topic => {}
                Some(LinkEvent::Message { topic, payload, retained }) => {
                    if topic == status_topic {
                        if payload == "online" && m.discovery {
                            mqtt::send(&client, logbook.announce_all());
                        }
                    } else if !retained {
                        // A retained `state` is someone else's: the daemon never retains one.
                        logbook.on_state(&payload);
                    }
                }
                Some(LinkEvent::Oversized { topic, bytes }) => logbook.oversized(&topic, bytes),
                None => break,
            },
            _ = today_tick.tick() => mqtt::send(&client, logbook.take_today()),
            _ = pages_tick.tick() => {
                logbook.rebuild_pages(Timestamp::now());
                logbook.save_seqs();
                if let Some(summary) = logbook.refusal_summary() {
                    info!("{summary}");
                }
            }
            () = tokio::time::sleep(until_midnight) => {
                tokio::time::sleep(PAST_MIDNIGHT).await;
                logbook.rebuild_pages(Timestamp::now());
            }
            () = shutdown.cancelled() => break,
        }
    }
    // Messages already received (and acknowledged) are logged before the unfinished line is
    // saved: the broker will not send them again.
    mqtt::send(&client, logbook.take_today());
    let _ = client.try_disconnect();
    let drain = async {
        while let Some(event) = events.recv().await {
            if let LinkEvent::Message {
                topic,
                payload,
                retained: false,
            } = event
                && topic != status_topic
                && topic != bridge_topic
            {
                logbook.on_state(&payload);
            }
        }
    };
    if tokio::time::timeout(DISCONNECT_WAIT, drain).await.is_err() {
        warn!("the broker did not see the logger's disconnect within 3 s");
    }
    logbook.close(Timestamp::now());
    if let Some(summary) = logbook.refusal_summary() {
        info!("{summary}");
    }
    poller.abort(); // already over, unless the broker was unreachable
    Ok(())
}
