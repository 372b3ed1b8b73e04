//! A fleet of simulated meters publishing their `state` messages to a broker, for the tests
//! and benchmarks of loggers that share a fleet (README "Fleets"). Not a user command: the
//! `fleet` example runs it from the command line.
//!
//! Each meter is the demo's simulated household ([`Simulator`], its own id and seed) read
//! through the real decoder and meter model, so its values are what a real box publishes. Each
//! has its own pace: `rate` messages per second with ±10 % jitter, starting at a random phase,
//! and numbers its messages `seq` 1, 2, 3… as the daemon does. Messages go out at QoS 1 on
//! one connection (clean session); [`run`] returns once the broker has acknowledged all of them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::time::Instant;

use crate::meter::Meter;
use crate::source::simulate::{SimConfig, Simulator};
use crate::tic::Decoder;

/// What to simulate and where to send it.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The broker.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// `mqtt.base_topic`.
    pub base_topic: String,
    /// How many meters; their ids are `first_id`, `first_id + 1`… on 12 digits.
    pub meters: usize,
    /// The first meter's id.
    pub first_id: u64,
    /// Messages per second of each meter.
    pub rate: f64,
    /// Messages each meter sends before [`run`] ends; `None` = until `duration` is over.
    pub messages_per_meter: Option<u64>,
    /// How long to run, at most.
    pub duration: Duration,
    /// The MQTT client id of the simulator's connection.
    pub client_id: String,
}

/// What [`run`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetReport {
    /// Messages the broker acknowledged.
    pub acknowledged: u64,
    /// The last `seq` of each meter, in id order.
    pub last_seq: Vec<u64>,
}

/// One simulated meter.
struct SimMeter {
    id: String,
    simulator: Simulator,
    decoder: Decoder,
    meter: Meter,
    seq: u64,
    /// Simulated seconds since its start.
    clock: f64,
}

impl SimMeter {
    fn new(id: String, seed: u64) -> SimMeter {
        let simulator = Simulator::new(SimConfig {
            meter_id: id.clone(),
            seed,
            // Every meter at another time of day, so that the fleet is not in step.
            start: (seed % 86_400) as f64,
            ..SimConfig::default()
        })
        .expect("the default simulated meter with a 12-digit id is valid");
        SimMeter {
            id,
            simulator,
            decoder: Decoder::default(),
            meter: Meter::new(230),
            seq: 0,
            clock: 0.0,
        }
    }

    /// The next `state` payload, `period` simulated seconds after the last one, stamped now.
    fn next_state(&mut self, period: f64) -> Option<String> {
        self.clock += period;
        let bytes = self.simulator.frame_at(self.clock);
        let mut frames = Vec::new();
        self.decoder.push(&bytes, |f| frames.push(f));
        let frame = frames.pop()?;
        let reading = self.meter.read(&frame, self.clock);
        self.seq += 1;
        let ts = jiff::ZonedDateTime::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
            .to_string();
        Some(reading.to_state_json(Some(&ts), Some(self.seq)))
    }
}

/// Publishes the fleet's messages; see the module doc.
pub async fn run(config: FleetConfig) -> anyhow::Result<FleetReport> {
    let mut options = MqttOptions::new(&config.client_id, &config.host, config.port);
    options.set_keep_alive(Duration::from_secs(30));
    options.set_inflight(1000);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 4096);
    let mut meters: Vec<SimMeter> = (0..config.meters)
        .map(|i| {
            let id = format!("{:012}", config.first_id + i as u64);
            SimMeter::new(id, 1 + i as u64 * 7919)
        })
        .collect();
    let period = 1.0 / config.rate.max(1e-6);
    let start = Instant::now();
    let end = start + config.duration;
    // Each meter's next message, soonest first; the first at a random phase.
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = (0..meters.len())
        .map(|i| Reverse((start + Duration::from_secs_f64(fastrand::f64() * period), i)))
        .collect();
    // The event loop runs on its own, so that a publisher falling behind its schedule (a
    // machine at its limit) never starves it; it counts the broker's acknowledgements.
    let (acked_tx, acked) = tokio::sync::watch::channel(0u64);
    let driver = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    n += 1;
                    let _ = acked_tx.send(n);
                }
                Ok(_) => {}
                Err(e) => return anyhow::anyhow!("the fleet's broker: {e}"),
            }
        }
    });
    let mut sent = 0u64;
    while let Some(Reverse((at, i))) = due.pop() {
        if driver.is_finished() {
            return Err(driver.await?);
        }
        if at >= end {
            break;
        }
        tokio::time::sleep_until(at).await;
        let meter = &mut meters[i];
        let Some(payload) = meter.next_state(period) else {
            continue;
        };
        let topic = format!("{}/{}/state", config.base_topic, meter.id);
        // Waits while rumqttc's request queue is full.
        client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await?;
        sent += 1;
        if sent.is_multiple_of(64) {
            tokio::task::yield_now().await; // the event loop's turn, when behind schedule
        }
        if config.messages_per_meter.is_none_or(|n| meter.seq < n) {
            let jitter = 0.9 + 0.2 * fastrand::f64();
            due.push(Reverse((at + Duration::from_secs_f64(period * jitter), i)));
        }
    }
    // Everything is queued: the broker has 30 s to acknowledge it all.
    let mut watch = acked.clone();
    let all = watch.wait_for(|n| *n >= sent);
    let acknowledged = match tokio::time::timeout(Duration::from_secs(30), all).await {
        Ok(Ok(n)) => *n,
        _ if driver.is_finished() => return Err(driver.await?),
        _ => {
            driver.abort();
            anyhow::bail!(
                "the broker acknowledged {} of {sent} messages",
                *acked.borrow()
            );
        }
    };
    let _ = client.try_disconnect();
    driver.abort();
    Ok(FleetReport {
        acknowledged,
        last_seq: meters.iter().map(|m| m.seq).collect(),
    })
}
