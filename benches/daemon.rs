//! End-to-end figures of `linkymon run`: PTY → daemon → mosquitto → subscriber.
//!
//! `cargo bench --bench daemon` prints, for the targets of issue 16:
//! - the delay from the first frame to the first publication (it includes the connection);
//! - the latency from a frame's last byte (ETX) to its `state` message at a subscriber,
//!   p50 and p99 over 1,000 frames sent one at a time;
//! - the CPU time per frame in bursts of 20,000 frames sent back to back with
//!   `publish.interval: 0`: each burst's figure, then the median of the 5 (this shared machine
//!   gives one binary figures up to 50 % apart from one burst to the next);
//! - the CPU share of one core and the peak RSS at the real 1200-baud line rate, on a fresh
//!   daemon (a burst leaves a high-water mark that a real line never causes);
//! - the share of frames whose `state` was published, which must be 100 %.
//!
//! `BENCH_BIN=path` measures another build of linkymon, so that two builds are compared in
//! the same conditions. Needs mosquitto and socat (`./scripts/test.sh` installs them). Not a
//! test: nothing is asserted.

#[path = "../tests/integration/support/mod.rs"]
#[allow(dead_code, unused_imports)]
mod support;

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use linkymon::tic::{Mode, encode_frame};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use support::{Broker, Pty, SIM_ID, cpu_seconds, peak_rss_kb, write_config};

const LATENCY_FRAMES: u32 = 1_000;
const BURSTS: u32 = 5;
const BURST_FRAMES: u32 = 20_000;
const LINE_RATE_RUN: Duration = Duration::from_secs(20);

/// A historic EJP frame of the simulator's meter whose PAPP carries a sequence number, to
/// match messages to frames.
fn frame(seq: u32) -> Vec<u8> {
    let papp = format!("{:05}", seq % 100_000);
    let hn = format!("{:09}", 688_322 + seq / 10);
    let iinst = format!("{:03}", seq % 40);
    encode_frame(
        Mode::Historic,
        [
            ("ADCO", None, SIM_ID),
            ("OPTARIF", None, "EJP."),
            ("ISOUSC", None, "45"),
            ("EJPHN", None, hn.as_str()),
            ("EJPHPM", None, "000080072"),
            ("PTEC", None, "HN.."),
            ("IINST", None, iinst.as_str()),
            ("IMAX", None, "090"),
            ("PAPP", None, papp.as_str()),
            ("HHPHC", None, "A"),
            ("MOTDETAT", None, "000000"),
        ],
    )
}

/// An in-process subscriber to the `state` topic: each message's PAPP and arrival instant.
fn subscribe(port: u16) -> mpsc::Receiver<(u32, Instant)> {
    let (tx, rx) = mpsc::channel();
    let mut options = MqttOptions::new("bench-sub", "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(options, 100);
    client
        .subscribe(format!("linky/{SIM_ID}/state"), QoS::AtMostOnce)
        .unwrap();
    std::thread::spawn(move || {
        let _client = client;
        for event in connection.iter() {
            let Ok(Event::Incoming(Packet::Publish(p))) = event else {
                continue;
            };
            let now = Instant::now();
            let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
            let papp = v["values"]["PAPP"].as_u64().unwrap_or(0) as u32;
            if tx.send((papp, now)).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    rx
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `linkymon run` of `BENCH_BIN`, else of this build; started, then given time to connect.
fn start_daemon(config: &Path) -> Child {
    let binary =
        std::env::var("BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_linkymon").to_owned());
    let daemon = Command::new(binary)
        .args(["run", "-c"])
        .arg(config)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    daemon
}

fn stop_daemon(mut daemon: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let _ = daemon.wait();
}

/// Frames sent and `state` messages received, over the whole run.
#[derive(Default)]
struct Delivery {
    sent: u64,
    published: u64,
}

/// Delay to the first publication, then the latency of `LATENCY_FRAMES` frames sent one at a
/// time; the latencies in ms, sorted.
fn first_publication_and_latency(
    feed: &mut File,
    states: &mpsc::Receiver<(u32, Instant)>,
    delivery: &mut Delivery,
) -> Vec<f64> {
    let t = Instant::now();
    feed.write_all(&frame(1)).unwrap();
    let (_, at) = states
        .recv_timeout(Duration::from_secs(5))
        .expect("no first state");
    delivery.sent += 1;
    delivery.published += 1;
    println!(
        "first publication: {:.2} ms after the first frame's last byte",
        (at - t).as_secs_f64() * 1e3
    );
    std::thread::sleep(Duration::from_millis(300));

    // Frames 2 ms apart, 500 times the meter's pace.
    let mut latencies = Vec::new();
    for seq in 2..2 + LATENCY_FRAMES {
        feed.write_all(&frame(seq)).unwrap();
        let sent = Instant::now();
        delivery.sent += 1;
        while let Ok((papp, at)) = states.recv_timeout(Duration::from_secs(2)) {
            if papp == seq {
                latencies.push((at - sent).as_secs_f64() * 1e3);
                delivery.published += 1;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    latencies.sort_by(f64::total_cmp);
    latencies
}

/// `BURSTS` bursts of `BURST_FRAMES` frames back to back; the CPU µs per frame of each.
fn bursts(
    pid: u32,
    feed: &mut File,
    states: &mpsc::Receiver<(u32, Instant)>,
    delivery: &mut Delivery,
) -> Vec<f64> {
    let mut per_frame = Vec::new();
    for burst in 0..BURSTS {
        while states.try_recv().is_ok() {}
        let first = 10_000 + burst * BURST_FRAMES;
        let last = first + BURST_FRAMES - 1;
        let stream: Vec<u8> = (first..=last).flat_map(frame).collect();
        let cpu0 = cpu_seconds(pid);
        let t = Instant::now();
        feed.write_all(&stream).unwrap();
        let mut received = 0;
        while let Ok((papp, _)) = states.recv_timeout(Duration::from_secs(10)) {
            received += 1;
            if papp == last % 100_000 {
                break;
            }
        }
        let wall = t.elapsed().as_secs_f64();
        std::thread::sleep(Duration::from_millis(200));
        received += states.try_iter().count() as u32;
        let cpu = cpu_seconds(pid) - cpu0;
        delivery.sent += u64::from(BURST_FRAMES);
        delivery.published += u64::from(received);
        per_frame.push(cpu * 1e6 / f64::from(BURST_FRAMES));
        println!(
            "burst {}: {BURST_FRAMES} frames in {wall:.2} s, {received} states; \
             {:.1} µs of CPU per frame",
            burst + 1,
            per_frame.last().unwrap(),
        );
    }
    per_frame.sort_by(f64::total_cmp);
    per_frame
}

/// Frames at 1200 baud for `LINE_RATE_RUN`; the CPU share of one core, in %.
fn line_rate(
    pid: u32,
    feed: &mut File,
    states: &mpsc::Receiver<(u32, Instant)>,
    delivery: &mut Delivery,
) -> f64 {
    // The first frame connects and announces discovery: not part of the steady state.
    feed.write_all(&frame(39_999)).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    while states.try_recv().is_ok() {}
    let cpu0 = cpu_seconds(pid);
    let t = Instant::now();
    let mut seq = 40_000;
    let mut ends = std::collections::HashMap::new();
    let mut latencies = Vec::new();
    while t.elapsed() < LINE_RATE_RUN {
        let bytes = frame(seq);
        let chunks = bytes.chunks(12).count();
        for (i, chunk) in bytes.chunks(12).enumerate() {
            feed.write_all(chunk).unwrap();
            if i + 1 == chunks {
                ends.insert(seq % 100_000, Instant::now()); // the frame's ETX
            }
            // 7E1 at 1200 baud: 10 bits a byte, 120 bytes/s.
            std::thread::sleep(Duration::from_millis(100));
            for (papp, at) in states.try_iter() {
                latencies.extend(ends.get(&papp).map(|end| (at - *end).as_secs_f64() * 1e3));
            }
        }
        std::thread::sleep(Duration::from_millis(25)); // the silence between frames
        seq += 1;
    }
    let share = 100.0 * (cpu_seconds(pid) - cpu0) / t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    for (papp, at) in states.try_iter() {
        latencies.extend(ends.get(&papp).map(|end| (at - *end).as_secs_f64() * 1e3));
    }
    delivery.sent += u64::from(seq - 40_000);
    delivery.published += latencies.len() as u64;
    latencies.sort_by(f64::total_cmp);
    println!(
        "{} frames at 1200 baud over {:.0} s; latency ETX → state at a subscriber: p50 {:.3} ms, max {:.3} ms",
        seq - 40_000,
        t.elapsed().as_secs_f64(),
        percentile(&latencies, 0.5),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    share
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; there is nothing to list.
    }
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let pty = Pty::start(dir.path());
    let mut feed = pty.open_feed();
    let config = write_config(
        dir.path(),
        broker.port,
        &format!(
            "meter:\n  port: {}\n  mode: historic\npublish:\n  interval: 0\n",
            pty.meter.display()
        ),
    );
    let states = subscribe(broker.port);
    let mut delivery = Delivery::default();

    let daemon = start_daemon(&config);
    let latencies = first_publication_and_latency(&mut feed, &states, &mut delivery);
    println!(
        "latency ETX → state at a subscriber, frames 2 ms apart ({} frames): p50 {:.3} ms, p99 {:.3} ms",
        latencies.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    let per_frame = bursts(daemon.id(), &mut feed, &states, &mut delivery);
    println!(
        "CPU per frame in a burst, median of {BURSTS}: {:.1} µs (bursts from {:.1} to {:.1})",
        percentile(&per_frame, 0.5),
        per_frame[0],
        per_frame.last().unwrap()
    );
    stop_daemon(daemon);

    let daemon = start_daemon(&config);
    let share = line_rate(daemon.id(), &mut feed, &states, &mut delivery);
    println!("CPU at 1200 baud: {share:.3} % of one core");
    println!("peak RSS at 1200 baud: {} kB", peak_rss_kb(daemon.id()));
    stop_daemon(daemon);

    println!(
        "frames published: {} of {} ({:.2} %)",
        delivery.published,
        delivery.sent,
        100.0 * delivery.published as f64 / delivery.sent as f64
    );
}
