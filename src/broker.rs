//! The embedded MQTT broker: `mqtt.embedded_broker: true` serves MQTT from inside linkymon, so a
//! box without mosquitto still feeds Home Assistant, Node-RED, `mosquitto_sub` and the logger.
//!
//! This module owns starting and stopping the broker (rumqttd's router and two plain listeners,
//! configured in code) and turning what can go wrong there into errors a user can act on.
//!
//! The two listeners share one router, so they are one broker: a message published on either
//! reaches the subscribers of both, retained messages and Last Wills included.
//! - MQTT 3.1.1 on `mqtt.port`, for the daemon and everyone else (Home Assistant, Node-RED,
//!   `mosquitto_sub`);
//! - MQTT 5 on `mqtt.embedded_port_v5` (`mqtt.port` + 1 by default), for `linkymon logger`,
//!   which speaks only MQTT 5: a logger whose config says `mqtt.embedded_broker: true` connects
//!   there (see [`point_at_v5_listener`]).
//!
//! It does not publish anything: the publisher connects to it over TCP like to any broker,
//! so what Home Assistant sees is the same with mosquitto or without.
//!
//! # How rumqttd is run, and why not with `rumqttd::Broker`
//! `Broker::start` blocks forever, logs a port that is already taken instead of returning it, and
//! cannot be stopped. So [`start`] assembles the two public parts itself:
//!
//! - the router (`rumqttd::Router::spawn`): one thread that holds the subscriptions, the retained
//!   messages and the Last Wills. rumqttd offers no way to end it; after [`BrokerHandle::stop`] it
//!   stays parked on an empty channel until the process exits.
//! - the listeners (`rumqttd::Server`, one per protocol): run on a thread of their own with a
//!   single-threaded tokio runtime, so the broker never competes with the daemon's runtime and
//!   stopping it is dropping that runtime, which closes the ports and every client connection.
//!
//! The ports are tried first with a plain bind, for a clear "port N is taken" error, and
//! [`start`] returns only once both listeners accept connections, so the first try of the
//! daemon and of the logger succeeds.
//!
//! # What rumqttd does and does not do here
//! Retained messages and the Last Will behave as with mosquitto (the integration tests check both
//! with `mosquitto_sub`), with one limit: when a QoS 1 client subscribes, the retained messages
//! its subscriptions match are sent within rumqttd's in-flight window of 100 unacknowledged
//! messages, and the ones beyond it are dropped, not queued (QoS 0 subscriptions get up to
//! [`MAX_OUTGOING_PACKETS`]). One meter retains fewer than 100 topics under `<base>/<id>/`
//! (about 70 for a three-phase producer in standard mode), and Home Assistant subscribes to each
//! entity's topic on its own, so linkymon alone stays under it; `mosquitto_sub -q 1 -t '#'` on a
//! three-phase meter with its discovery configs, or many other devices announcing themselves
//! through this broker, would not. Use mosquitto for a broker shared by a whole house.
//! MQTT 5 subscription options are accepted and ignored: a subscription with Retain Handling
//! "do not send" still receives the retained messages it matches (the logger drops a retained
//! `state` itself: the daemon never publishes one), and the client's Maximum Packet
//! Size is not checked (no message here is over [`MAX_PAYLOAD_BYTES`], far below the logger's).
//! There is no persistence (retained values are re-sent by the daemon within a publish interval)
//! and no TLS: bind it to loopback, or set `mqtt.username` and `mqtt.password`, which the broker
//! then asks of every client (and which the daemon and the logger use themselves).
//!
//! rumqttd logs through `tracing` under the `rumqttd` target, at `error` level for ordinary client
//! disconnections; the binary silences that target (see [`LOG_TARGET`]) and this module logs the
//! few lines that matter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

/// The `tracing` target of rumqttd's own log lines, which the binary turns off: rumqttd logs
/// every client that connects and, at `error` level, every one that disconnects.
pub const LOG_TARGET: &str = "rumqttd";

/// How many messages a QoS 0 subscriber may be sent in one go, retained ones included.
pub const MAX_OUTGOING_PACKETS: u64 = 1000;

/// The most topics the embedded broker holds a retained message for. linkymon itself retains
/// fewer than 100 topics for a meter and as many discovery configs; 1000 leaves room for a few
/// meters and other devices, and stops a client from filling the memory with retained topics.
pub const MAX_RETAINED_TOPICS: usize = 1000;

/// The most bytes (topics and payloads) of retained messages the embedded broker holds: a
/// meter's retained topics and discovery configs take about 100 KB.
pub const MAX_RETAINED_BYTES: usize = 4 * 1024 * 1024;

/// The largest message the embedded broker accepts, in bytes. linkymon's own largest (a
/// discovery config) is about 1 KB.
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// What the broker may be holding as retained messages, and the bound on it.
///
/// rumqttd keeps every retained message until it is cleared and offers no limit, and the
/// messages it forwards to subscribers no longer say whether they were retained. So the guard
/// counts, per topic, the last non-empty message seen there (an upper bound on what is
/// retained: a retained message is also forwarded), and a message that would take the count
/// past [`MAX_RETAINED_TOPICS`] or the bytes past [`MAX_RETAINED_BYTES`] is cleared at once
/// (an empty retained message on its topic, the MQTT way to delete one).
#[cfg_attr(not(feature = "embedded-broker"), allow(dead_code))]
#[derive(Debug, Default)]
pub(crate) struct RetainBudget {
    /// The size (topic + payload) of the last non-empty message on each topic.
    topics: std::collections::HashMap<String, usize>,
    bytes: usize,
    /// How many messages were cleared for going over the bound.
    pub(crate) cleared: u64,
}

#[cfg_attr(not(feature = "embedded-broker"), allow(dead_code))]
impl RetainBudget {
    /// Accounts for a message on `topic`; `false` when it must be cleared (it is then not
    /// counted). An empty payload clears the topic and frees its share.
    pub(crate) fn admit(&mut self, topic: &str, payload_len: usize) -> bool {
        let old = self.topics.remove(topic).unwrap_or(0);
        self.bytes -= old;
        if payload_len == 0 {
            return true;
        }
        let size = topic.len() + payload_len;
        if self.topics.len() >= MAX_RETAINED_TOPICS || self.bytes + size > MAX_RETAINED_BYTES {
            self.cleared += 1;
            return false;
        }
        self.topics.insert(topic.to_owned(), size);
        self.bytes += size;
        true
    }
}

/// A user name and password the broker asks of every client.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Why the embedded broker could not start. Each message names the setting to change.
#[derive(Debug, Error)]
pub enum BrokerError {
    /// `mqtt.embedded_bind` is not an IP address.
    #[error(
        "mqtt.embedded_bind: `{0}` is not an IP address; write 127.0.0.1 (this machine only), \
         0.0.0.0 (every IPv4 interface) or :: (every interface)"
    )]
    BadBind(String),
    /// Something else listens on the port already.
    #[error(
        "port {port} on {ip} is taken: {source}; stop what listens there (another MQTT broker \
         such as mosquitto?) or choose another {setting}"
    )]
    PortTaken {
        /// The address the broker was to listen on.
        ip: IpAddr,
        /// The port.
        port: u16,
        /// The setting that chose the port: `mqtt.port` or `mqtt.embedded_port_v5`.
        setting: &'static str,
        /// What the system said.
        source: std::io::Error,
    },
    /// The port could not be opened for another reason (no such address, no permission).
    #[error("cannot listen on port {port} on {ip}: {source}{hint}")]
    Bind {
        /// The address the broker was to listen on.
        ip: IpAddr,
        /// The port.
        port: u16,
        /// What the system said.
        source: std::io::Error,
        /// What to do about it, when we know.
        hint: &'static str,
    },
    /// The listener did not come up in time.
    #[error("the embedded MQTT broker did not start listening on {0} within 5 s")]
    NotListening(SocketAddr),
    /// The broker's thread could not be started.
    #[error("cannot start the embedded MQTT broker: {0}")]
    Thread(std::io::Error),
    /// This binary was built without the broker.
    #[error(
        "mqtt.embedded_broker: this linkymon was built without the embedded broker (cargo \
         feature `embedded-broker`); set it to false and run a broker such as mosquitto"
    )]
    NotBuiltIn,
}

/// Where the broker listens: `bind` must be an IP address (a host name could resolve to an
/// address of another machine, or to several).
pub fn listen_addr(bind: &str, port: u16) -> Result<SocketAddr, BrokerError> {
    let ip = bind
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map_err(|_| BrokerError::BadBind(bind.to_owned()))?;
    Ok(SocketAddr::new(ip, port))
}

/// The address a client on this machine uses to reach a broker listening on `listen`: loopback
/// when it listens on every interface, else the address itself (loopback may not be served).
pub fn client_addr(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The warning due when the broker is reachable from other machines and asks nothing of them.
pub fn exposure_warning(listen: SocketAddr, authenticated: bool) -> Option<String> {
    (!listen.ip().is_loopback() && !authenticated).then(|| {
        format!(
            "the embedded MQTT broker listens on {listen} without authentication: anyone who \
             can reach this machine can read the meter and publish to Home Assistant; set \
             mqtt.username and mqtt.password, or mqtt.embedded_bind: 127.0.0.1"
        )
    })
}

/// Sorts a failed bind of the port `setting` chose into a port that is taken and other
/// failures, with a hint for the common ones.
pub fn bind_error(
    listen: SocketAddr,
    setting: &'static str,
    source: std::io::Error,
) -> BrokerError {
    use std::io::ErrorKind;
    let (ip, port) = (listen.ip(), listen.port());
    let hint = match source.kind() {
        ErrorKind::AddrInUse => {
            return BrokerError::PortTaken {
                ip,
                port,
                setting,
                source,
            };
        }
        ErrorKind::PermissionDenied => {
            "; ports below 1024 need root or CAP_NET_BIND_SERVICE: use 1883"
        }
        ErrorKind::AddrNotAvailable => {
            "; mqtt.embedded_bind must be an address of this machine (or 0.0.0.0)"
        }
        _ => "",
    };
    BrokerError::Bind {
        ip,
        port,
        source,
        hint,
    }
}

#[cfg(feature = "embedded-broker")]
pub use imp::{BrokerHandle, start};

#[cfg(not(feature = "embedded-broker"))]
pub use absent::{BrokerHandle, start};

/// Starts the broker when `mqtt.embedded_broker` asks for it, and points the MQTT settings at
/// its MQTT 3.1.1 listener (`mqtt.host` becomes the address a local client uses; the port
/// stays). The daemon and the demo call this before they connect anything.
pub async fn start_configured(
    mqtt: &mut crate::config::MqttConfig,
) -> Result<Option<BrokerHandle>, BrokerError> {
    if !mqtt.embedded_broker {
        return Ok(None);
    }
    let credentials = mqtt.username.as_ref().map(|username| Credentials {
        username: username.clone(),
        password: mqtt
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default(),
    });
    let broker = start(
        &mqtt.embedded_bind,
        mqtt.port,
        mqtt.embedded_v5_port(),
        credentials,
    )
    .await?;
    mqtt.host = broker.client_addr().ip().to_string();
    Ok(Some(broker))
}

/// Points the settings of an MQTT 5 client (the logger) at the embedded broker's MQTT 5
/// listener on this machine: `mqtt.host` becomes the address a local client uses,
/// `mqtt.port` becomes `mqtt.embedded_port_v5`. For a config that says
/// `mqtt.embedded_broker: true`, which means the broker is the daemon's, on this machine.
pub fn point_at_v5_listener(mqtt: &mut crate::config::MqttConfig) -> Result<(), BrokerError> {
    let listen = client_addr(listen_addr(&mqtt.embedded_bind, mqtt.embedded_v5_port())?);
    mqtt.host = listen.ip().to_string();
    mqtt.port = listen.port();
    Ok(())
}

#[cfg(not(feature = "embedded-broker"))]
mod absent {
    use super::{BrokerError, Credentials};
    use std::net::SocketAddr;

    /// Stands for the broker in a build without it; never constructed.
    #[derive(Debug)]
    pub struct BrokerHandle(std::convert::Infallible);

    impl BrokerHandle {
        /// Never called: there is no handle without the broker.
        pub fn client_addr(&self) -> SocketAddr {
            match self.0 {}
        }

        /// Never called: there is no handle without the broker.
        pub async fn stop(self) {
            match self.0 {}
        }
    }

    /// Always fails: this build has no broker (configuration loading refuses
    /// `mqtt.embedded_broker: true` before this is reached).
    pub async fn start(
        _bind: &str,
        _port: u16,
        _port_v5: u16,
        _credentials: Option<Credentials>,
    ) -> Result<BrokerHandle, BrokerError> {
        Err(BrokerError::NotBuiltIn)
    }
}

#[cfg(feature = "embedded-broker")]
mod imp {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::time::Duration;

    use rumqttd::{ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings};
    use tokio::sync::oneshot;
    use tracing::{info, warn};

    use super::{
        BrokerError, Credentials, MAX_OUTGOING_PACKETS, MAX_PAYLOAD_BYTES, RetainBudget,
        bind_error, client_addr, exposure_warning, listen_addr,
    };

    /// How long [`start`] waits for the listener to accept connections.
    const READY_TIMEOUT: Duration = Duration::from_secs(5);

    /// How long the clients are still served after [`BrokerHandle::stop`]: the daemon's
    /// `offline`, published just before, must reach the subscribers.
    const GRACE: Duration = Duration::from_millis(200);

    /// A running broker. Dropping it stops the broker without waiting; [`BrokerHandle::stop`]
    /// waits until the port is closed.
    #[derive(Debug)]
    pub struct BrokerHandle {
        listen: SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        done: Option<oneshot::Receiver<()>>,
    }

    impl BrokerHandle {
        /// Where the broker listens.
        pub fn listen_addr(&self) -> SocketAddr {
            self.listen
        }

        /// Where a client on this machine reaches it (loopback when it listens everywhere).
        pub fn client_addr(&self) -> SocketAddr {
            client_addr(self.listen)
        }

        /// Serves the connected clients a moment longer (so the last messages reach them),
        /// then closes the port and every connection, and returns when that is done.
        pub async fn stop(mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
            if let Some(done) = self.done.take()
                && tokio::time::timeout(Duration::from_secs(3), done)
                    .await
                    .is_err()
            {
                warn!("the embedded MQTT broker took more than 3 s to stop");
            } else {
                info!("embedded MQTT broker stopped");
            }
        }
    }

    impl Drop for BrokerHandle {
        fn drop(&mut self) {
            if let Some(stop) = self.stop.take() {
                let _ = stop.send(());
            }
        }
    }

    /// rumqttd's settings for a listener on `listen`: plain MQTT, modest memory, the same limits
    /// for every client (both listeners take the same). A client without the credentials, when
    /// there are some, is refused.
    pub(super) fn settings(
        listen: SocketAddr,
        credentials: Option<&Credentials>,
    ) -> (RouterConfig, ServerSettings) {
        let router = RouterConfig {
            max_connections: 100,
            // Also the number of retained messages a new QoS 0 subscription receives at once.
            max_outgoing_packet_count: MAX_OUTGOING_PACKETS,
            // Every subscription filter keeps a log of the messages it matched, so a slow
            // subscriber can catch up: up to 3 segments of 64 KiB (payloads and topics) each.
            // A burst of discovery configs (70 × ~1 KB for a three-phase meter) fits.
            max_segment_size: 64 * 1024,
            max_segment_count: 2,
            ..RouterConfig::default()
        };
        let connections = ConnectionSettings {
            connection_timeout_ms: 5_000,
            max_payload_size: MAX_PAYLOAD_BYTES,
            max_inflight_count: 100,
            auth: credentials.map(|c| HashMap::from([(c.username.clone(), c.password.clone())])),
            external_auth: None,
            dynamic_filters: false,
        };
        let server = ServerSettings {
            name: "linkymon".into(),
            listen,
            tls: None,
            next_connection_delay_ms: 1,
            connections,
        };
        (router, server)
    }

    /// Starts the broker on `bind`: MQTT 3.1.1 on `port`, MQTT 5 on `port_v5`, asking clients
    /// for `credentials` when given, and returns once both listeners accept connections.
    pub async fn start(
        bind: &str,
        port: u16,
        port_v5: u16,
        credentials: Option<Credentials>,
    ) -> Result<BrokerHandle, BrokerError> {
        let listen = listen_addr(bind, port)?;
        let listen_v5 = listen_addr(bind, port_v5)?;
        let listeners = [(listen, "mqtt.port"), (listen_v5, "mqtt.embedded_port_v5")];
        // rumqttd only logs a failed bind, from its own thread: try the ports here first (both
        // at once, so the same port twice is an error too). The listeners bind them again a
        // moment later (both set SO_REUSEADDR).
        let mut tried = Vec::new();
        for (addr, setting) in listeners {
            tried
                .push(std::net::TcpListener::bind(addr).map_err(|e| bind_error(addr, setting, e))?);
        }
        drop(tried);
        if let Some(warning) = exposure_warning(listen, credentials.is_some()) {
            warn!("{warning}");
        }
        let (router_config, server_settings) = settings(listen, credentials.as_ref());
        let (_, server_settings_v5) = settings(listen_v5, credentials.as_ref());
        let router = Router::new(0, router_config).spawn();
        // The retain guard connects before any client can (see `start_retain_guard`); it sees
        // what comes through either listener, as they share the router.
        let (guard_tx, guard_rx, _) =
            rumqttd::local::LinkBuilder::new("linkymon-retain-guard", router.clone())
                .clean_session(true)
                .build()
                .map_err(|e| guard_error(&e))?;
        start_retain_guard(guard_tx, guard_rx)?;
        let mut server = Server::new(server_settings, router.clone(), rumqttd::protocol::v4::V4);
        let mut server_v5 = Server::new(server_settings_v5, router, rumqttd::protocol::v5::V5);

        let (stop_tx, stop_rx) = oneshot::channel();
        let (failed_tx, mut failed_rx) = oneshot::channel();
        let (done_tx, done_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("mqtt-broker".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = failed_tx.send((listeners[0], e));
                        return;
                    }
                };
                runtime.block_on(async {
                    // Each listener only returns when it cannot listen.
                    let failed = |which: (SocketAddr, &'static str), result: Result<(), _>| {
                        let error = result.err().map(|e| io_error_of(&e));
                        let error =
                            error.unwrap_or_else(|| std::io::Error::other("the listener ended"));
                        let _ = failed_tx.send((which, error));
                    };
                    tokio::select! {
                        result = server.start(LinkType::Remote) => failed(listeners[0], result),
                        result = server_v5.start(LinkType::Remote) => failed(listeners[1], result),
                        _ = stop_rx => {
                            // The listeners are closed; the connections run a little longer.
                            tokio::time::sleep(GRACE).await;
                        }
                    }
                });
                runtime.shutdown_timeout(Duration::from_secs(1));
                let _ = done_tx.send(());
            })
            .map_err(BrokerError::Thread)?;

        let handle = BrokerHandle {
            listen,
            stop: Some(stop_tx),
            done: Some(done_rx),
        };
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        for (addr, _) in listeners {
            loop {
                match failed_rx.try_recv() {
                    Ok(((addr, setting), error)) => return Err(bind_error(addr, setting, error)),
                    Err(oneshot::error::TryRecvError::Closed) => {
                        return Err(BrokerError::NotListening(addr));
                    }
                    Err(oneshot::error::TryRecvError::Empty) => {}
                }
                // The listener accepts: this probe connection (which rumqttd drops after its
                // connect timeout, or at once when we close it) proves the port is served.
                if tokio::net::TcpStream::connect(client_addr(addr))
                    .await
                    .is_ok()
                {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    drop(handle);
                    return Err(BrokerError::NotListening(addr));
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        info!(
            "embedded MQTT broker listening on {listen} (MQTT 3.1.1) and {listen_v5} (MQTT 5){}",
            if credentials.is_some() {
                " with authentication"
            } else {
                ""
            }
        );
        Ok(handle)
    }

    fn guard_error(e: &dyn std::fmt::Display) -> BrokerError {
        BrokerError::Thread(std::io::Error::other(format!("the retain guard: {e}")))
    }

    /// Runs the retain guard on the router's local link `tx`/`rx`, connected before any client
    /// can: a client of its own, subscribed to every topic, that clears each message
    /// [`RetainBudget`] refuses. Its thread lives as long as the router, which rumqttd cannot
    /// stop either.
    fn start_retain_guard(
        mut tx: rumqttd::local::LinkTx,
        mut rx: rumqttd::local::LinkRx,
    ) -> Result<(), BrokerError> {
        use rumqttd::Notification;
        tx.subscribe("#").map_err(|e| guard_error(&e))?;
        std::thread::Builder::new()
            .name("mqtt-retain-guard".into())
            .spawn(move || {
                let mut budget = RetainBudget::default();
                while let Ok(notification) = rx.recv() {
                    match notification {
                        Some(Notification::Forward(forward)) => {
                            let publish = forward.publish;
                            let Ok(topic) = std::str::from_utf8(&publish.topic) else {
                                continue;
                            };
                            if budget.admit(topic, publish.payload.len()) {
                                continue;
                            }
                            if budget.cleared == 1 {
                                warn!(
                                    "the embedded MQTT broker holds as many retained messages \
                                     as it may ({} topics, {} bytes): {topic} cleared, and any \
                                     further ones",
                                    super::MAX_RETAINED_TOPICS,
                                    super::MAX_RETAINED_BYTES
                                );
                            }
                            let topic = topic.to_owned();
                            if tx.publish(topic, Vec::new()).is_err() {
                                return;
                            }
                        }
                        // The router stops sending until told the link caught up.
                        Some(Notification::Unschedule) if rx.ready().is_err() => return,
                        _ => {}
                    }
                }
            })
            .map_err(BrokerError::Thread)?;
        Ok(())
    }

    /// The I/O error inside rumqttd's (unnameable) server error, for [`bind_error`].
    fn io_error_of(error: &(dyn std::error::Error + 'static)) -> std::io::Error {
        let mut cause = Some(error);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return std::io::Error::new(io.kind(), io.to_string());
            }
            cause = e.source();
        }
        std::io::Error::other(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bind_address_must_be_an_ip_address() {
        assert_eq!(
            listen_addr("127.0.0.1", 1883).unwrap(),
            "127.0.0.1:1883".parse().unwrap()
        );
        assert_eq!(
            listen_addr("::", 1883).unwrap(),
            "[::]:1883".parse().unwrap()
        );
        assert_eq!(
            listen_addr("[::1]", 1884).unwrap(),
            "[::1]:1884".parse().unwrap()
        );
        let message = listen_addr("localhost", 1883).unwrap_err().to_string();
        assert!(
            message.starts_with("mqtt.embedded_bind: `localhost` is not an IP address"),
            "{message}"
        );
    }

    #[test]
    fn local_clients_reach_a_broker_on_every_interface_through_loopback() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(client_addr(addr("0.0.0.0:1883")), addr("127.0.0.1:1883"));
        assert_eq!(client_addr(addr("[::]:1883")), addr("[::1]:1883"));
        assert_eq!(client_addr(addr("127.0.0.1:1883")), addr("127.0.0.1:1883"));
        assert_eq!(
            client_addr(addr("192.168.1.20:1883")),
            addr("192.168.1.20:1883")
        );
    }

    #[test]
    fn a_broker_open_to_the_network_without_authentication_is_warned_about() {
        let addr = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(exposure_warning(addr("127.0.0.1:1883"), false), None);
        assert_eq!(exposure_warning(addr("[::1]:1883"), false), None);
        assert_eq!(exposure_warning(addr("0.0.0.0:1883"), true), None);
        let warning = exposure_warning(addr("0.0.0.0:1883"), false).unwrap();
        assert!(
            warning.contains("0.0.0.0:1883 without authentication"),
            "{warning}"
        );
        assert!(warning.contains("mqtt.username"), "{warning}");
        assert!(exposure_warning(addr("192.168.1.20:1883"), false).is_some());
    }

    #[test]
    fn the_logger_is_pointed_at_the_mqtt_5_listener_on_this_machine() {
        let mut mqtt = crate::config::MqttConfig {
            host: "broker.lan".into(),
            port: 1883,
            embedded_broker: true,
            embedded_bind: "0.0.0.0".into(),
            ..Default::default()
        };
        point_at_v5_listener(&mut mqtt).unwrap();
        assert_eq!((mqtt.host.as_str(), mqtt.port), ("127.0.0.1", 1884));
        mqtt.embedded_bind = "192.168.1.20".into();
        mqtt.embedded_port_v5 = Some(2000);
        point_at_v5_listener(&mut mqtt).unwrap();
        assert_eq!((mqtt.host.as_str(), mqtt.port), ("192.168.1.20", 2000));
    }

    #[test]
    fn a_taken_port_is_named_in_the_error() {
        let addr = "127.0.0.1:1883".parse().unwrap();
        let taken = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let message = bind_error(addr, "mqtt.port", taken).to_string();
        assert!(
            message.starts_with("port 1883 on 127.0.0.1 is taken: "),
            "{message}"
        );
        assert!(message.contains("mqtt.port"), "{message}");
        let taken = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let message = bind_error(addr, "mqtt.embedded_port_v5", taken).to_string();
        assert!(
            message.ends_with("choose another mqtt.embedded_port_v5"),
            "{message}"
        );
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let message = bind_error("0.0.0.0:80".parse().unwrap(), "mqtt.port", denied).to_string();
        assert!(
            message.starts_with("cannot listen on port 80 on 0.0.0.0: "),
            "{message}"
        );
        assert!(message.contains("CAP_NET_BIND_SERVICE"), "{message}");
    }

    #[test]
    fn credentials_never_show_the_password() {
        let credentials = Credentials {
            username: "ha".into(),
            password: "hunter2".into(),
        };
        let shown = format!("{credentials:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ha"), "{shown}");
    }

    #[test]
    fn the_retain_budget_bounds_topics_and_bytes_and_frees_cleared_topics() {
        let mut budget = RetainBudget::default();
        for i in 0..MAX_RETAINED_TOPICS {
            assert!(budget.admit(&format!("t/{i}"), 10));
        }
        assert!(!budget.admit("one/too/many", 10));
        // An update of a topic already counted is not a new topic.
        assert!(budget.admit("t/0", 20));
        // Clearing one makes room for another.
        assert!(budget.admit("t/1", 0));
        assert!(budget.admit("new", 10));
        assert_eq!(budget.cleared, 1);

        let mut budget = RetainBudget::default();
        assert!(budget.admit("big", MAX_RETAINED_BYTES - 3));
        assert!(!budget.admit("x", 1));
        assert!(budget.admit("big", 10));
        assert!(budget.admit("x", 1));
    }

    #[cfg(feature = "embedded-broker")]
    #[test]
    fn rumqttd_is_given_the_listen_address_and_the_credentials() {
        let credentials = Credentials {
            username: "ha".into(),
            password: "pw".into(),
        };
        let addr = "127.0.0.1:1883".parse().unwrap();
        let (router, server) = imp::settings(addr, Some(&credentials));
        assert_eq!(server.listen, addr);
        assert!(server.tls.is_none());
        assert_eq!(
            server.connections.auth,
            Some([("ha".to_string(), "pw".to_string())].into())
        );
        assert_eq!(router.max_outgoing_packet_count, MAX_OUTGOING_PACKETS);
        let (_, open) = imp::settings(addr, None);
        assert_eq!(open.connections.auth, None);
    }
}
