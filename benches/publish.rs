//! The daemon's per-frame work after decoding, in frames/s: the `state` JSON alone
//! (`state_json`), [`Policy::on_reading`] with `publish.interval: 0` (`policy`: the state and
//! every changed value, as at full speed), and the whole path of a frame without the network
//! (`pipeline`: decoder, meter model, power estimate, host timestamp and policy).
//!
//! Run with `cargo bench --bench publish`. Inputs as in `benches/decode.rs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use linkymon::commands::run::now_iso8601;
use linkymon::meter::{Meter, PowerEstimator, Reading};
use linkymon::publish::policy::{Estimates, Policy};
use linkymon::publish::topics::Topics;
use linkymon::tic::{Decoder, ModeHint};

mod common;

/// A fixed `ts`, so `policy` measures the policy and not the clock.
const TS: &str = "2026-11-28T21:04:05+01:00";

struct Input {
    name: &'static str,
    bytes: Vec<u8>,
    /// Every frame's reading, its time and power estimate, as the daemon hands them over.
    readings: Vec<(Reading, f64, Option<i64>)>,
}

fn at(frame: &linkymon::tic::Frame) -> f64 {
    frame.end_offset() as f64 * 10.0 / f64::from(frame.mode().baud())
}

fn input(name: &'static str, bytes: Vec<u8>) -> Input {
    let mut decoder = Decoder::new(ModeHint::Auto);
    let mut meter = Meter::new(230);
    let mut power = PowerEstimator::default();
    let mut readings = Vec::new();
    decoder.push(&bytes, |frame| {
        let at = at(&frame);
        let reading = meter.read(&frame, at);
        let power_w = power.update(&reading, at);
        readings.push((reading, at, power_w));
    });
    Input {
        name,
        bytes,
        readings,
    }
}

fn policy() -> Policy {
    Policy::new(Topics::new("linky", "021728123456"), 0.0)
}

/// Messages of every reading through one policy.
fn publish_all(input: &Input) -> usize {
    let mut policy = policy();
    let mut messages = 0;
    for (reading, at, power_w) in &input.readings {
        let out = policy.on_reading(reading, TS, *at, Estimates { power_w: *power_w });
        messages += black_box(out).len();
    }
    messages
}

/// Decoder to messages, as `linkymon run` does for each frame.
fn pipeline(bytes: &[u8]) -> usize {
    let mut decoder = Decoder::new(ModeHint::Auto);
    let mut meter = Meter::new(230);
    let mut power = PowerEstimator::default();
    let mut policy = policy();
    let mut messages = 0;
    decoder.push(bytes, |frame| {
        let at = at(&frame);
        let ts = now_iso8601();
        let reading = meter.read(&frame, at);
        let power_w = power.update(&reading, at);
        messages += black_box(policy.on_reading(&reading, &ts, at, Estimates { power_w })).len();
    });
    messages
}

fn benches(c: &mut Criterion) {
    let inputs: Vec<Input> = common::historic_dump()
        .map(|bytes| input("historic", bytes))
        .into_iter()
        .chain([input(
            "standard",
            common::standard_stream(common::STANDARD_BYTES),
        )])
        .collect();
    for input in &inputs {
        println!(
            "{}: {} frames, {:.2} messages/frame at interval 0",
            input.name,
            input.readings.len(),
            publish_all(input) as f64 / input.readings.len() as f64
        );
    }
    let mut group = c.benchmark_group("publish");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for input in &inputs {
        group.throughput(Throughput::Elements(input.readings.len() as u64));
        group.bench_function(format!("{}/state_json", input.name), |b| {
            b.iter(|| {
                for (reading, _, _) in &input.readings {
                    black_box(reading.to_state_json(Some(TS), Some(1)));
                }
            })
        });
        group.bench_function(format!("{}/policy", input.name), |b| {
            b.iter(|| publish_all(black_box(input)))
        });
        group.bench_function(format!("{}/pipeline", input.name), |b| {
            b.iter(|| pipeline(black_box(&input.bytes)))
        });
    }
    group.finish();
}

criterion_group!(publish, benches);
criterion_main!(publish);
