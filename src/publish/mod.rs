//! What goes to MQTT: topics, payloads, Home Assistant discovery and the publish policy.
//!
//! [`topics`], [`policy`] and [`discovery`] are pure: they turn readings into [`Message`]s,
//! tested on values alone. [`publisher`] sends them over a [`link`] (rumqttc's event loop),
//! keeping `state` messages in an outbox and on disk in the [`spool`] until the broker
//! acknowledges them; [`tls`] builds the rustls configuration and [`diagnosis`] says what a
//! failed connection means.

pub mod bridge;
pub mod diagnosis;
pub mod discovery;
pub mod link;
mod outbox;
pub mod policy;
pub mod publisher;
pub mod sequence;
pub mod spool;
pub mod tls;
pub mod topics;

use topics::Topics;

/// One MQTT publication, decided by the core and sent by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Full topic name.
    pub topic: String,
    /// UTF-8 payload.
    pub payload: String,
    /// Whether the broker keeps it for late subscribers.
    pub retain: bool,
    /// 0 (at most once) or 1 (at least once).
    pub qos: u8,
}

impl Message {
    /// A message with the given delivery.
    pub fn new(
        topic: impl Into<String>,
        payload: impl Into<String>,
        retain: bool,
        qos: u8,
    ) -> Self {
        Message {
            topic: topic.into(),
            payload: payload.into(),
            retain,
            qos,
        }
    }
}

/// `<base>/<id>/relay`: `ON` while the meter's relay contact is closed, retained at QoS 1 like
/// `ejp`, so Home Assistant and late subscribers see the contact's state after a restart.
pub fn relay_message(topics: &Topics, closed: bool) -> Message {
    on_off(topics.leaf("relay"), closed)
}

/// `<base>/<id>/line`: `ON` while valid frames arrive, `OFF` once the line has been silent for
/// [`publisher::LINE_SILENCE`]; retained at QoS 1, and the second availability topic of the
/// meter's Home Assistant entities (see [`discovery`]).
pub fn line_message(topics: &Topics, on: bool) -> Message {
    on_off(topics.leaf("line"), on)
}

/// A binary state the way Home Assistant's `binary_sensor` reads it: `ON`/`OFF`, retained at
/// QoS 1 so a late subscriber and a restarted Home Assistant get it.
fn on_off(topic: String, on: bool) -> Message {
    Message::new(topic, if on { "ON" } else { "OFF" }, true, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_state_is_on_or_off_retained_at_qos_one() {
        let topics = Topics::new("linky", "021728123456");
        assert_eq!(
            relay_message(&topics, true),
            Message::new("linky/021728123456/relay", "ON", true, 1)
        );
        assert_eq!(relay_message(&topics, false).payload, "OFF");
        assert_eq!(
            line_message(&topics, false),
            Message::new("linky/021728123456/line", "OFF", true, 1)
        );
    }
}
