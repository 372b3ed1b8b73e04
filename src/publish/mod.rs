//! What goes to MQTT: topics, payloads, Home Assistant discovery and the publish policy.
//!
//! Everything here but [`mqtt`] is pure: it turns readings into [`Message`]s, tested on
//! values alone. [`mqtt`] is the rumqttc glue that sends them.

pub mod discovery;
pub mod mqtt;
pub mod policy;
pub mod topics;

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
