//! A meter at one baud rate read at the other, through a socat pseudo-terminal.
//!
//! A pseudo-terminal carries bytes, not a line, and Linux does not even keep the baud rate set
//! on one (`stty` reads 0). So the test plays the wire: it follows the rate the daemon says it
//! opened the port at (its `baud=` log lines) and writes what a UART at that rate would
//! receive from the meter: the meter's bytes when the rates match, else the bytes a receiver
//! makes of a waveform at the wrong rate (garbage with no valid group, as on a real wire).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::{
    Broker, Pty, Running, Subscriber, TEMPO_CAPTURE, TEMPO_ID, fixtures_dir, write_config,
};

/// The 7E1 waveform of `bytes`, one entry per bit time: start (0), 7 data bits LSB first,
/// even parity, stop (1).
fn waveform(bytes: &[u8]) -> Vec<bool> {
    let mut bits = Vec::with_capacity(bytes.len() * 10);
    for &b in bytes {
        bits.push(false);
        for i in 0..7 {
            bits.push(b >> i & 1 == 1);
        }
        bits.push((b & 0x7F).count_ones() % 2 == 1);
        bits.push(true);
    }
    bits
}

/// What a UART at `rx_baud` (8 bits, no parity) receives from `bits` sent at `tx_baud`.
fn receive(bits: &[bool], tx_baud: u32, rx_baud: u32) -> Vec<u8> {
    let level = |t: f64| {
        let i = (t * f64::from(tx_baud)) as usize;
        bits.get(i).copied().unwrap_or(true)
    };
    let end = bits.len() as f64 / f64::from(tx_baud);
    let (bit, step) = (1.0 / f64::from(rx_baud), 1.0 / f64::from(16 * rx_baud));
    let mut out = Vec::new();
    let mut t = 0.0;
    while t < end {
        if level(t) {
            t += step;
            continue;
        }
        // A start bit: sample the middle of each of the next 8 bits.
        let mut byte = 0u8;
        for i in 0..8 {
            if level(t + bit * (1.5 + f64::from(i))) {
                byte |= 1 << i;
            }
        }
        out.push(byte);
        t += bit * 9.5; // the stop bit's middle; look for the next start from there
    }
    out
}

/// The rate the daemon last said it reads at: the last `baud=` in its log.
fn rate_said(stderr: &Mutex<Vec<String>>) -> Option<u32> {
    stderr.lock().unwrap().iter().rev().find_map(|l| {
        let rest = &l[l.find("baud=")? + 5..];
        rest.split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()
    })
}

/// A meter sending `capture` over and over at `baud` (which the test may change), into the
/// feed end of `pty`, as received at the rate the daemon reads at.
struct Line {
    baud: Arc<AtomicU32>,
    capture: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Line {
    fn start(pty: &Pty, capture: &str, baud: u32, daemon: Arc<Mutex<Vec<String>>>) -> Self {
        let baud = Arc::new(AtomicU32::new(baud));
        let capture = Arc::new(Mutex::new(read_capture(capture)));
        let stop = Arc::new(AtomicBool::new(false));
        let mut feed = pty.open_feed();
        let thread = std::thread::spawn({
            let (baud, bytes, stop) = (baud.clone(), capture.clone(), stop.clone());
            move || {
                let mut at = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    // A tenth of a second of the line.
                    let tx = baud.load(Ordering::Relaxed);
                    let chunk: Vec<u8> = {
                        let bytes = bytes.lock().unwrap();
                        (0..tx as usize / 100)
                            .map(|i| bytes[(at + i) % bytes.len()])
                            .collect()
                    };
                    at += chunk.len();
                    let rx = rate_said(&daemon).unwrap_or(tx);
                    let received = if rx == tx {
                        chunk
                    } else {
                        receive(&waveform(&chunk), tx, rx)
                    };
                    let _ = feed.write_all(&received);
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        Line {
            baud,
            capture,
            stop,
            thread: Some(thread),
        }
    }

    /// The meter switches mode: another capture at another rate.
    fn switch(&self, capture: &str, baud: u32) {
        *self.capture.lock().unwrap() = read_capture(capture);
        self.baud.store(baud, Ordering::Relaxed);
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_capture(name: &str) -> Vec<u8> {
    std::fs::read(fixtures_dir().join(name)).unwrap()
}

const STANDARD: &str = "std-1p-base-ticdecodecpp.tic";
const STANDARD_ID: &str = "064468368739";
fn serial_config(dir: &Path, port: u16, meter: &Path) -> PathBuf {
    write_config(
        dir,
        port,
        &format!(
            "meter:\n  port: {}\n  mode: auto\npublish:\n  interval: 0\n",
            meter.display()
        ),
    )
}

#[test]
fn the_receiver_model_turns_a_wrong_rate_into_garbage_and_the_right_one_into_the_bytes() {
    let bytes = read_capture(STANDARD);
    let bits = waveform(&bytes[..400]);
    let same: Vec<u8> = receive(&bits, 9600, 9600)
        .iter()
        .map(|b| b & 0x7F)
        .collect();
    assert_eq!(same, &bytes[..400]);
    for (tx, rx) in [(9600, 1200), (1200, 9600)] {
        let garbage = receive(&bits, tx, rx);
        let mut decoder = linkymon::tic::Decoder::default();
        decoder.push(&garbage, |_| {});
        assert_eq!(decoder.stats().groups_ok, 0, "{tx} read at {rx}");
        assert!(!garbage.is_empty());
    }
}

#[test]
fn a_9600_baud_meter_on_a_port_opened_at_1200_is_found_then_a_switch_to_1200_is_followed() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let pty = Pty::start(dir.path());
    let config = serial_config(dir.path(), broker.port, &pty.meter);
    let sub = Subscriber::start(broker.port, &["linky/+/state"]);
    let daemon = Running::start(&config, "run");
    let line = Line::start(&pty, STANDARD, 9600, daemon.stderr_handle());

    // Auto mode opens at 1200 and reads garbage; 5 s later it tries 9600 and finds frames.
    sub.wait_for("standard frames", Duration::from_secs(15), |l| {
        l.starts_with(&format!("linky/{STANDARD_ID}/state "))
    });
    // The meter is switched to historic mode (1200 baud): at 9600 only garbage comes, and
    // after 15 s of it the daemon probes again.
    line.switch(TEMPO_CAPTURE, 1200);
    // (A real meter keeps its serial number across the switch; these captures are two meters,
    // so the second one is published as a new meter, under its own topics.)
    sub.wait_for("historic frames", Duration::from_secs(30), |l| {
        l.contains(&format!("\"meter\":\"{TEMPO_ID}\",\"mode\":\"historic\""))
    });
    let said = daemon.stop().join("\n");
    assert!(said.contains("trying another baud rate"), "{said}");
    assert!(said.contains("may have changed mode"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
}
