//! Labels that come and go (issue 17, item 2): `ADPS` is in the frames only while the meter
//! is overloaded. Once it has left them, the daemon clears its retained topic with one empty
//! retained message: a live subscriber sees the empty payload, a late one gets no stale value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use linkymon::tic::{Mode, encode_frame};

use crate::support::{Broker, Running, Subscriber, write_config};

const ID: &str = "021728123456";

/// A historic base frame drawing `iinst` A, with `ADPS` when `adps` is given.
fn frame(iinst: &str, adps: Option<&str>) -> Vec<u8> {
    let mut groups = vec![
        ("ADCO", None, ID),
        ("OPTARIF", None, "BASE"),
        ("ISOUSC", None, "45"),
        ("BASE", None, "012345678"),
        ("PTEC", None, "TH.."),
        ("IINST", None, iinst),
        ("IMAX", None, "090"),
        ("PAPP", None, "11500"),
        ("HHPHC", None, "A"),
        ("MOTDETAT", None, "000000"),
    ];
    if let Some(adps) = adps {
        groups.push(("ADPS", None, adps));
    }
    encode_frame(Mode::Historic, groups)
}

/// An overload for 5 frames (ADPS 47), then 5 frames without it.
fn write_capture(dir: &Path) -> PathBuf {
    let mut bytes = Vec::new();
    for _ in 0..5 {
        bytes.extend(frame("049", Some("047")));
    }
    for _ in 0..5 {
        bytes.extend(frame("030", None));
    }
    let path = dir.join("overload.tic");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The payloads of `topic` in `mosquitto_sub -v` lines: an empty payload is printed
/// `(null)`, returned as `""`.
fn payloads(lines: &[String], topic: &str) -> Vec<String> {
    let prefix = format!("{topic} ");
    lines
        .iter()
        .filter_map(|l| {
            l.strip_prefix(&prefix)
                .map(|p| if p == "(null)" { "" } else { p }.to_owned())
        })
        .collect()
}

#[test]
fn an_overload_that_ended_is_cleared_from_its_retained_topic() {
    let broker = Broker::start();
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let capture = write_capture(dir);
    // At the line's pace ×10 (about 0.1 s a frame), not as fast as read: the publisher takes
    // the latest reading, and at speed 0 the ADPS frames were all read before it published
    // (the subscriber saw one PAPP and no ADPS).
    let config = write_config(
        dir,
        broker.port,
        &format!(
            "meter:\n  port: replay:{}\n  replay_speed: 10\npublish:\n  interval: 0\n",
            capture.display()
        ),
    );
    let adps = format!("linky/{ID}/ADPS");
    let papp = format!("linky/{ID}/PAPP");
    let live = Subscriber::start(broker.port, &[&adps, &papp]);
    let mut daemon = Running::start(&config, "run");
    let status = daemon.wait(Duration::from_secs(30));
    assert!(status.success(), "{status}: {:?}", daemon.stderr());
    let expected = ["47", ""];
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while payloads(&live.lines(), &adps).len() < expected.len()
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        payloads(&live.lines(), &adps),
        expected,
        "the value, then one empty payload: {:#?}",
        live.lines()
    );

    // A subscriber that comes after gets the retained values still true, and no ADPS.
    let late = Subscriber::start(broker.port, &[&adps, &papp]);
    late.wait_for("the retained PAPP", Duration::from_secs(5), |l| {
        l == format!("{papp} 11500")
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        payloads(&late.lines(), &adps).is_empty(),
        "a stale ADPS is still retained: {:#?}",
        late.lines()
    );
}
