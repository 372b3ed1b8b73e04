//! What goes to MQTT: topics, payloads, Home Assistant discovery and the publish policy.
//!
//! [`topics`], [`policy`] and [`discovery`] are pure: they turn readings into [`Message`]s,
//! tested on values alone. [`publisher`] sends them over a [`link`] (rumqttc's event loop),
//! keeping `state` messages in an outbox and on disk in the [`spool`] until the broker
//! acknowledges them; [`tls`] builds the rustls configuration and [`diagnosis`] says what a
//! failed connection means.

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
    let payload = if closed { "ON" } else { "OFF" };
    Message::new(topics.leaf("relay"), payload, true, 1)
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
    }
}
