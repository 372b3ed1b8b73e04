//! Decoding throughput: bytes/s (group `decode`) and frames/s (group `frames`) for a real
//! historic dump and a generated standard-mode stream of the same size, each measured for the
//! decoder alone and for the decoder followed by [`Meter::read`].
//!
//! Run with `cargo bench --bench decode`. The historic input lives outside the crate
//! (`../shared/tic/corpus`); without it that input is skipped with a message.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use linkymon::meter::Meter;
use linkymon::tic::{Decoder, ModeHint};

mod common;

struct Input {
    name: &'static str,
    bytes: Vec<u8>,
    frames: u64,
}

/// Decoder alone: counts the frames it emits.
fn decode_only(bytes: &[u8]) -> u64 {
    let mut decoder = Decoder::new(ModeHint::Auto);
    let mut frames = 0;
    decoder.push(bytes, |frame| {
        black_box(&frame);
        frames += 1;
    });
    frames
}

/// Decoder and meter model, timed the way `linkymon decode` times a file (bytes at the baud rate).
fn decode_and_read(bytes: &[u8]) -> u64 {
    let mut decoder = Decoder::new(ModeHint::Auto);
    let mut meter = Meter::new(230);
    let mut frames = 0;
    decoder.push(bytes, |frame| {
        let at = frame.end_offset() as f64 * 10.0 / f64::from(frame.mode().baud());
        black_box(meter.read(&frame, at));
        frames += 1;
    });
    frames
}

fn historic() -> Option<Input> {
    let bytes = common::historic_dump()?;
    let frames = decode_only(&bytes);
    Some(Input {
        name: "historic",
        bytes,
        frames,
    })
}

fn standard() -> Input {
    let bytes = common::standard_stream(common::STANDARD_BYTES);
    let frames = decode_only(&bytes);
    Input {
        name: "standard",
        bytes,
        frames,
    }
}

fn inputs() -> Vec<Input> {
    let inputs: Vec<Input> = historic().into_iter().chain([standard()]).collect();
    for input in &inputs {
        assert_eq!(decode_and_read(&input.bytes), input.frames);
        // What the benchmarked work amounts to: groups kept, values refused or held.
        let mut decoder = Decoder::new(ModeHint::Auto);
        let mut meter = Meter::new(230);
        decoder.push(&input.bytes, |frame| {
            let at = frame.end_offset() as f64 * 10.0 / f64::from(frame.mode().baud());
            meter.read(&frame, at);
        });
        println!(
            "{}: {} bytes, {} frames, {:.0} bytes/frame\n  {:?}\n  {:?}",
            input.name,
            input.bytes.len(),
            input.frames,
            input.bytes.len() as f64 / input.frames as f64,
            decoder.stats(),
            meter.stats(),
        );
    }
    inputs
}

fn configure(group: &mut BenchmarkGroup<'_, WallTime>) {
    group
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
}

fn run_levels(group: &mut BenchmarkGroup<'_, WallTime>, input: &Input) {
    let expected = input.frames;
    group.bench_function(format!("{}/decoder", input.name), |b| {
        b.iter(|| assert_eq!(decode_only(black_box(&input.bytes)), expected))
    });
    group.bench_function(format!("{}/decoder+meter", input.name), |b| {
        b.iter(|| assert_eq!(decode_and_read(black_box(&input.bytes)), expected))
    });
}

fn benches(c: &mut Criterion) {
    let inputs = inputs();
    // Bytes per second: the figure to hold against a serial line.
    let mut group = c.benchmark_group("decode");
    configure(&mut group);
    for input in &inputs {
        group.throughput(Throughput::Bytes(input.bytes.len() as u64));
        run_levels(&mut group, input);
    }
    group.finish();
    // Frames per second: the same work, counted in frames (a historic frame is ~4× shorter).
    let mut group = c.benchmark_group("frames");
    configure(&mut group);
    for input in &inputs {
        group.throughput(Throughput::Elements(input.frames));
        run_levels(&mut group, input);
    }
    group.finish();
}

criterion_group!(decode, benches);
criterion_main!(decode);
