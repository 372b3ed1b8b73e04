//! One MQTT connection, driven by the publisher itself on rumqttc's packet codec and
//! protocol state ([`MqttState`]: packet ids, in-flight window, keep-alive, collisions).
//!
//! rumqttc's own event loop writes and flushes every packet on its own: one system call, and
//! on loopback one pass through the TCP stack, per message. That was a third of the daemon's
//! CPU at full speed. Here packets are encoded into one buffer as the publisher queues them and
//! leave in one write when it has finished its turn: a frame's `state` and values together,
//! and during a burst several frames at once. Nothing waits for a timer, so latency is the same.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    ConnectReturnCode, ConnectionError, MqttState, Packet, PingReq, Publish, QoS, Request,
    StateError, Subscribe,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::bytes::BytesMut;

/// The largest packet either way: a discovery config is under 2 KiB, a `state` under 4 KiB.
const MAX_PACKET: usize = 64 * 1024;

/// QoS 1 publications in flight at once. Queued ones wait in [`Connection`]'s own queue.
const MAX_IN_FLIGHT: u16 = 128;

/// Once the window is full, acknowledgements that make room for this many publications let
/// the queue move on, not each one: a busy broker acknowledges one publication at a time,
/// and refilling slot by slot cost a write (on loopback, a pass through the broker's TCP
/// stack too) per message.
const REFILL: u16 = 32;

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Broker host name or address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// The rustls configuration, for `mqtt.tls`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The CONNECT packet: client id, keep-alive, Last Will, credentials.
    pub connect: rumqttc::Connect,
    /// How long connecting, the handshakes and any one write may take.
    pub timeout: Duration,
}

/// A lost or refused connection; boxed, since rumqttc's error is large and the hot path
/// returns it from every publication.
pub type LinkError = Box<ConnectionError>;

/// What the broker sent that the publisher acts on.
#[derive(Debug)]
pub enum Received<T> {
    /// A QoS 1 publication was acknowledged; its tag, when it had one.
    Acked(Option<T>),
    /// A message on a subscribed topic.
    Message(Publish),
    /// Nothing for the publisher (a PINGRESP, a SUBACK, a keep-alive PINGREQ went out).
    Nothing,
}

/// A live connection. `T` tags QoS 1 publications so their acknowledgement can be matched
/// to what the caller sent (a `state` message in memory or in the spool).
pub struct Connection<T> {
    stream: Box<dyn Stream>,
    state: MqttState,
    /// Publications waiting for room in the in-flight window, in order.
    waiting: VecDeque<(Publish, Option<T>)>,
    /// The window filled up with publications waiting: they move on once [`REFILL`] slots
    /// are free.
    refilling: bool,
    /// Tags of QoS 1 publications in flight, by packet id.
    tags: Vec<Option<T>>,
    read_buf: BytesMut,
    write_buf: BytesMut,
    keep_alive: Duration,
    /// When the next PINGREQ is due; one timer for the connection's life, since registering
    /// a new one on every call to [`receive`](Self::receive) cost more than the receiving.
    ping: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl<T: Copy> Connection<T> {
    /// Connects, says CONNECT and waits for the broker's CONNACK.
    pub async fn open(options: &ConnectOptions) -> Result<Self, LinkError> {
        let connecting = Self::handshake(options);
        tokio::time::timeout(options.timeout, connecting)
            .await
            .map_err(|_| Box::new(ConnectionError::NetworkTimeout))?
    }

    async fn handshake(options: &ConnectOptions) -> Result<Self, LinkError> {
        let tcp = TcpStream::connect((options.host.as_str(), options.port))
            .await
            .map_err(io)?;
        // Without it, Nagle's algorithm and the broker's delayed ACK hold small writes for
        // ~40 ms: a frame's state would reach Home Assistant late.
        tcp.set_nodelay(true).map_err(io)?;
        let stream: Box<dyn Stream> = match &options.tls {
            None => Box::new(tcp),
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(options.host.clone())
                    .map_err(|e| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
                let connector = rumqttc::tokio_rustls::TlsConnector::from(config.clone());
                Box::new(connector.connect(name, tcp).await.map_err(io)?)
            }
        };
        // MQTT's keep-alive 0 means no pings; a day then stands for "never".
        let keep_alive = match options.connect.keep_alive {
            0 => Duration::from_secs(86_400),
            secs => Duration::from_secs(u64::from(secs)),
        };
        let mut connection = Connection {
            stream,
            state: MqttState::new(MAX_IN_FLIGHT, false),
            waiting: VecDeque::new(),
            refilling: false,
            tags: vec![None; usize::from(MAX_IN_FLIGHT) + 1],
            read_buf: BytesMut::with_capacity(4096),
            write_buf: BytesMut::with_capacity(4096),
            keep_alive,
            ping: Box::pin(tokio::time::sleep(keep_alive)),
            timeout: options.timeout,
        };
        connection.encode(&Packet::Connect(options.connect.clone()))?;
        connection.flush().await?;
        match read_packet(&mut connection.stream, &mut connection.read_buf).await? {
            Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Success => Ok(connection),
            Packet::ConnAck(ack) => Err(Box::new(ConnectionError::ConnectionRefused(ack.code))),
            other => Err(Box::new(ConnectionError::NotConnAck(other))),
        }
    }

    /// Queues a publication; it leaves with the next [`flush`](Self::flush). A QoS 1 one
    /// waits here while the in-flight window is full.
    pub fn publish(
        &mut self,
        topic: String,
        qos: QoS,
        retain: bool,
        payload: String,
        tag: Option<T>,
    ) -> Result<(), LinkError> {
        let mut publish = Publish::new(topic, qos, payload);
        publish.retain = retain;
        self.waiting.push_back((publish, tag));
        self.admit()
    }

    /// Publications queued behind a full in-flight window.
    pub fn backlog(&self) -> usize {
        self.waiting.len()
    }

    /// Subscribes to one topic.
    pub fn subscribe(&mut self, topic: &str, qos: QoS) -> Result<(), LinkError> {
        let request = Request::Subscribe(Subscribe::new(topic, qos));
        self.send(request)
    }

    /// Writes everything queued, in one write when the socket takes it.
    pub async fn flush(&mut self) -> Result<(), LinkError> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        let writing = self.stream.write_all_buf(&mut self.write_buf);
        match tokio::time::timeout(self.timeout, writing).await {
            Ok(written) => written.map_err(io)?,
            Err(_) => return Err(Box::new(ConnectionError::FlushTimeout)),
        }
        self.stream.flush().await.map_err(io)?; // TLS: push the last record out
        Ok(())
    }

    /// Whether something waits for [`flush`](Self::flush).
    pub fn unflushed(&self) -> bool {
        !self.write_buf.is_empty()
    }

    /// Waits for the next packet from the broker and handles it: acknowledgements free the
    /// window, QoS 1 messages are acknowledged (with the next flush). Queues a PINGREQ every
    /// keep-alive period, busy or not, as rumqttc does: a second one unanswered is an error,
    /// so a broker that went silent without closing the connection is noticed.
    /// Cancel-safe: a packet half read stays in the buffer.
    pub async fn receive(&mut self) -> Result<Received<T>, LinkError> {
        let Connection {
            stream,
            read_buf,
            ping,
            ..
        } = self;
        let packet = tokio::select! {
            packet = read_packet(stream, read_buf) => packet?,
            () = ping.as_mut() => {
                let next = tokio::time::Instant::now() + self.keep_alive;
                self.ping.as_mut().reset(next);
                self.send(Request::PingReq(PingReq))?;
                return Ok(Received::Nothing);
            }
        };
        self.handle(packet)
    }

    /// The next packet already read whole, handled as [`receive`](Self::receive) does, without
    /// waiting: acknowledgements arrive in bunches, and each would otherwise cost a turn.
    pub fn buffered(&mut self) -> Option<Result<Received<T>, LinkError>> {
        match Packet::read(&mut self.read_buf, MAX_PACKET) {
            Ok(packet) => Some(self.handle(packet)),
            Err(rumqttc::Error::InsufficientBytes(_)) => None,
            Err(e) => Some(Err(state(StateError::Deserialization(e)))),
        }
    }

    fn handle(&mut self, packet: Packet) -> Result<Received<T>, LinkError> {
        let acked = match &packet {
            Packet::PubAck(ack) => Some(ack.pkid),
            _ => None,
        };
        let message = match &packet {
            Packet::Publish(p) => Some(p.clone()),
            _ => None,
        };
        let reply = self.state.handle_incoming_packet(packet).map_err(state)?;
        self.state.events.clear();
        if let Some(reply) = reply {
            self.encode(&reply)?;
        }
        if let Some(pkid) = acked {
            let tag = self.tags.get_mut(usize::from(pkid)).and_then(Option::take);
            self.admit()?;
            return Ok(Received::Acked(tag));
        }
        Ok(message.map_or(Received::Nothing, Received::Message))
    }

    /// Says DISCONNECT, then reads until the broker closes the connection (at most a second),
    /// handing on the acknowledgements that arrive meanwhile: closing a socket with unread
    /// data in it sends a reset, and the broker may then drop the last messages unread.
    pub async fn disconnect(mut self, mut acked: impl FnMut(T)) {
        if self.send(Request::Disconnect(rumqttc::Disconnect)).is_err()
            || self.flush().await.is_err()
        {
            return;
        }
        let draining = async {
            while let Ok(received) = self.receive().await {
                if let Received::Acked(Some(tag)) = received {
                    acked(tag);
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), draining).await;
    }

    /// Moves waiting publications into the window while it has room, in order; after the
    /// window was full, only once it has room for [`REFILL`] of them.
    fn admit(&mut self) -> Result<(), LinkError> {
        if self.refilling && self.state.inflight() > MAX_IN_FLIGHT - REFILL {
            return Ok(());
        }
        self.refilling = false;
        while self.state.collision.is_none() && !self.waiting.is_empty() {
            if self.state.inflight() >= MAX_IN_FLIGHT {
                self.refilling = true;
                break;
            }
            let Some((publish, tag)) = self.waiting.pop_front() else {
                break;
            };
            let packet = self
                .state
                .handle_outgoing_packet(Request::Publish(publish))
                .map_err(state)?;
            self.state.events.clear();
            if let Some(Packet::Publish(p)) = &packet
                && p.pkid != 0
            {
                self.tags[usize::from(p.pkid)] = tag;
            }
            if let Some(packet) = packet {
                self.encode(&packet)?;
            }
        }
        Ok(())
    }

    fn send(&mut self, request: Request) -> Result<(), LinkError> {
        let packet = self.state.handle_outgoing_packet(request).map_err(state)?;
        self.state.events.clear();
        if let Some(packet) = packet {
            self.encode(&packet)?;
        }
        Ok(())
    }

    fn encode(&mut self, packet: &Packet) -> Result<(), LinkError> {
        packet
            .write(&mut self.write_buf, MAX_PACKET)
            .map_err(|e| state(StateError::Deserialization(e)))?;
        Ok(())
    }
}

/// One whole packet; cancel-safe (bytes read stay in `read_buf`).
async fn read_packet(
    stream: &mut Box<dyn Stream>,
    read_buf: &mut BytesMut,
) -> Result<Packet, LinkError> {
    loop {
        match Packet::read(read_buf, MAX_PACKET) {
            Ok(packet) => return Ok(packet),
            Err(rumqttc::Error::InsufficientBytes(missing)) => read_buf.reserve(missing),
            Err(e) => return Err(state(StateError::Deserialization(e))),
        }
        if stream.read_buf(read_buf).await.map_err(io)? == 0 {
            return Err(state(StateError::ConnectionAborted));
        }
    }
}

fn io(e: std::io::Error) -> LinkError {
    Box::new(ConnectionError::Io(e))
}

fn state(e: StateError) -> LinkError {
    Box::new(ConnectionError::MqttState(e))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    use rumqttc::{ConnAck, PubAck};

    use super::*;

    /// A broker's end of the socket, speaking just enough MQTT for one test.
    struct Peer {
        socket: TcpStream,
        buf: BytesMut,
    }

    impl Peer {
        /// Accepts one client and answers its CONNECT with `code`.
        fn accept(listener: &TcpListener, code: ConnectReturnCode) -> Peer {
            let (socket, _) = listener.accept().unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut peer = Peer {
                socket,
                buf: BytesMut::new(),
            };
            assert!(matches!(peer.packets(1)[0], Packet::Connect(_)));
            peer.send(&Packet::ConnAck(ConnAck::new(code, false)));
            peer
        }

        /// The packets of one read from the socket (at least `at_least`, reading on until then).
        fn packets(&mut self, at_least: usize) -> Vec<Packet> {
            let mut packets = Vec::new();
            while packets.len() < at_least {
                let mut chunk = [0u8; 65536];
                let n = self.socket.read(&mut chunk).unwrap();
                assert!(n > 0, "the client closed the connection");
                self.buf.extend_from_slice(&chunk[..n]);
                while let Ok(packet) = Packet::read(&mut self.buf, MAX_PACKET) {
                    packets.push(packet);
                }
            }
            packets
        }

        fn send(&mut self, packet: &Packet) {
            let mut out = BytesMut::new();
            packet.write(&mut out, MAX_PACKET).unwrap();
            self.socket.write_all(&out).unwrap();
        }
    }

    fn options(port: u16, keep_alive: u16) -> ConnectOptions {
        let mut connect = rumqttc::Connect::new("test");
        connect.keep_alive = keep_alive;
        ConnectOptions {
            host: "127.0.0.1".into(),
            port,
            tls: None,
            connect,
            timeout: Duration::from_secs(5),
        }
    }

    /// A client connected to a peer served on a thread by `serve`.
    async fn connected<R: Send + 'static>(
        keep_alive: u16,
        serve: impl FnOnce(Peer) -> R + Send + 'static,
    ) -> (Connection<u32>, std::thread::JoinHandle<R>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer =
            std::thread::spawn(move || serve(Peer::accept(&listener, ConnectReturnCode::Success)));
        let client = Connection::open(&options(port, keep_alive)).await.unwrap();
        (client, peer)
    }

    #[tokio::test]
    async fn what_one_turn_queues_leaves_in_one_write() {
        let (mut client, peer) = connected(30, |mut peer| peer.packets(1)).await;
        for (topic, qos) in [("a/state", QoS::AtLeastOnce), ("a/PAPP", QoS::AtMostOnce)] {
            client
                .publish(topic.into(), qos, false, "1".into(), Some(1))
                .unwrap();
        }
        client
            .publish("a/IINST".into(), QoS::AtMostOnce, true, "7".into(), None)
            .unwrap();
        assert!(client.unflushed());
        client.flush().await.unwrap();
        let topics: Vec<String> = peer
            .join()
            .unwrap()
            .into_iter()
            .map(|p| match p {
                Packet::Publish(p) => p.topic,
                other => panic!("not a publication: {other:?}"),
            })
            .collect();
        assert_eq!(topics, ["a/state", "a/PAPP", "a/IINST"]);
    }

    #[tokio::test]
    async fn acknowledgements_return_tags_and_a_full_window_refills_in_a_batch() {
        let total = u32::from(MAX_IN_FLIGHT) + 10;
        let (mut client, peer) = connected(30, move |mut peer| {
            let first = peer.packets(usize::from(MAX_IN_FLIGHT));
            let pkid = |p: &Packet| match p {
                Packet::Publish(p) => p.pkid,
                other => panic!("not a publication: {other:?}"),
            };
            for packet in &first[..usize::from(REFILL)] {
                peer.send(&Packet::PubAck(PubAck::new(pkid(packet))));
            }
            let next = peer.packets(10);
            (
                first.len(),
                first[..10].iter().map(pkid).collect::<Vec<_>>(),
                next.iter().map(pkid).collect::<Vec<_>>(),
            )
        })
        .await;
        for tag in 0..total {
            client
                .publish(
                    "a/state".into(),
                    QoS::AtLeastOnce,
                    false,
                    "{}".into(),
                    Some(tag),
                )
                .unwrap();
        }
        assert_eq!(client.backlog(), 10, "the window holds {MAX_IN_FLIGHT}");
        client.flush().await.unwrap();
        for tag in 0..u32::from(REFILL) {
            match client.receive().await.unwrap() {
                Received::Acked(acked) => assert_eq!(acked, Some(tag), "the tags in order"),
                other => panic!("expected an acknowledgement, got {other:?}"),
            }
            let waiting = if tag + 1 < u32::from(REFILL) { 10 } else { 0 };
            assert_eq!(
                client.backlog(),
                waiting,
                "after {} acknowledgements",
                tag + 1
            );
            assert_eq!(client.unflushed(), waiting == 0, "written only in a batch");
        }
        client.flush().await.unwrap();
        let (sent_first, first_pkids, next) = peer.join().unwrap();
        assert_eq!(sent_first, usize::from(MAX_IN_FLIGHT));
        assert_eq!(next, first_pkids, "the freed packet ids are used again");
    }

    #[tokio::test]
    async fn a_silent_broker_is_pinged_then_given_up() {
        let (mut client, peer) = connected(1, |mut peer| (peer.packets(1), peer)).await;
        let started = tokio::time::Instant::now();
        assert!(matches!(client.receive().await, Ok(Received::Nothing)));
        client.flush().await.unwrap();
        let (packets, _open) = peer.join().unwrap();
        assert!(matches!(packets[..], [Packet::PingReq]));
        // No PINGRESP: the next keep-alive period ends the link.
        let e = client.receive().await.unwrap_err();
        assert!(
            matches!(*e, ConnectionError::MqttState(StateError::AwaitPingResp)),
            "{e}"
        );
        assert!(started.elapsed() >= Duration::from_millis(1900));
    }

    #[tokio::test]
    async fn a_refused_connection_says_the_brokers_code() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = std::thread::spawn(move || {
            Peer::accept(&listener, ConnectReturnCode::BadUserNamePassword)
        });
        let e = Connection::<u32>::open(&options(port, 30))
            .await
            .err()
            .expect("refused");
        assert!(matches!(
            *e,
            ConnectionError::ConnectionRefused(ConnectReturnCode::BadUserNamePassword)
        ));
        drop(peer.join());
    }
}
