//! The box, tested on values: golden screens, the PNG, the LED over time, the relay combined
//! with the TIC, and the shell on in-memory devices with paused time. The real drivers are
//! tried too: off a Raspberry Pi they must fail with a clear error, never a panic.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use jiff::civil::{Time, time};
use tokio::sync::watch;
use tokio::time::Duration;
use tokio_util::sync::CancellationToken;

use super::led::{Pattern, led_on, pattern};
use super::screen::{Screen, picture};
use super::status::{FORGET_AFTER_S, NOTICE_HOLD_S, SILENT_AFTER_S};
use super::task::{Devices, drive, sample_contact};
use super::*;
use crate::config::{DisplayConfig, LedConfig, LedState, RelayConfig};
use crate::meter::{Reading, TempoColour};

// ---------------------------------------------------------------------------------------------
// Readings, built from frames the way the daemon sees them.

use crate::testing::historic;

/// A historic EJP meter; `ptec` `None` stands for a frame whose PTEC group was lost.
fn ejp(ptec: Option<&str>, notice: bool, papp: &str, iinst: &str) -> Reading {
    let mut groups = vec![
        ("ADCO", "021728123456"),
        ("OPTARIF", "EJP."),
        ("ISOUSC", "45"),
        ("EJPHN", "000688322"),
        ("EJPHPM", "000080072"),
    ];
    if notice {
        groups.push(("PEJP", "30"));
    }
    if let Some(ptec) = ptec {
        groups.push(("PTEC", ptec));
    }
    groups.extend([
        ("IINST", iinst),
        ("IMAX", "090"),
        ("PAPP", papp),
        ("MOTDETAT", "000000"),
    ]);
    historic(&groups)
}

fn consuming() -> Reading {
    ejp(Some("HN.."), false, "01450", "007")
}

fn injecting() -> Reading {
    ejp(Some("HN.."), false, "00000", "013")
}

fn notice() -> Reading {
    ejp(Some("HN.."), true, "02310", "010")
}

fn peak() -> Reading {
    ejp(Some("PM.."), false, "00870", "004")
}

/// A historic Tempo meter on the peak hours of a red day, tomorrow white.
fn tempo_red() -> Reading {
    crate::testing::historic_tempo("HPJR", "BLAN", "012", "02760", "Y")
}

/// A standard-mode HC meter in peak hours at 13:43, its off-peak hours starting at 14:40.
fn standard_hc() -> Reading {
    crate::testing::reading(
        crate::tic::Mode::Standard,
        &[
            ("ADSC", None, "061964123456"),
            ("DATE", Some("H250307134349"), ""),
            ("NGTF", None, "H PLEINE/CREUSE "),
            ("LTARF", None, " HEURE  PLEINE  "),
            ("SINSTS", None, "01230"),
            ("STGE", None, "003A0401"),
            ("NTARF", None, "02"),
            ("NJOURF", None, "00"),
            ("NJOURF+1", None, "00"),
            (
                "PJOURF+1",
                None,
                "00008002 0210C001 08108002 1440C001 16408002 NONUTILE NONUTILE NONUTILE \
                 NONUTILE NONUTILE NONUTILE",
            ),
        ],
    )
}

const CLOCK: Time = time(21, 4, 5, 0);

/// The status after `reading` came at t = 100 s.
fn after(reading: &Reading) -> Status {
    let mut s = Status::default();
    s.on_reading(reading, 100.0, CLOCK);
    s
}

/// What the box shows 1 s after `reading`, without a relay.
fn view_of(reading: &Reading) -> View {
    after(reading).view(101.0, false)
}

// ---------------------------------------------------------------------------------------------
// Golden screens

/// The screens the README shows, each with its view.
fn golden_states() -> Vec<(&'static str, View)> {
    let mut relay = after(&consuming());
    relay.on_relay(Some(true));
    vec![
        ("consuming", view_of(&consuming())),
        ("injecting", view_of(&injecting())),
        ("notice", view_of(&notice())),
        ("peak", view_of(&peak())),
        ("tempo-red", view_of(&tempo_red())),
        ("next-change", view_of(&standard_hc())),
        ("no-data", Status::default().view(5.0, false)),
        ("silent", after(&consuming()).view(100.0 + 185.0, false)),
        ("relay-peak", relay.view(101.0, true)),
    ]
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn updating() -> bool {
    std::env::var_os("LINKYMON_UPDATE_GOLDEN").is_some_and(|v| v == "1")
}

/// Rows that differ, with both versions, so a failure reads without a diff tool.
fn row_diff(expected: &str, actual: &str) -> String {
    expected
        .lines()
        .zip(actual.lines())
        .enumerate()
        .filter(|(_, (e, a))| e != a)
        .map(|(y, (e, a))| format!("row {y:2} expected {e}\n       actual   {a}\n"))
        .collect()
}

#[test]
fn screens_match_the_golden_ascii_files() {
    let dir = root().join("tests/fixtures/screens");
    let docs = root().join("docs");
    let mut failures = Vec::new();
    for (name, view) in golden_states() {
        let actual = picture(&Screen::new(&view));
        let path = dir.join(format!("{name}.txt"));
        if updating() {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::create_dir_all(&docs).unwrap();
            std::fs::write(&path, actual.to_ascii()).unwrap();
            let png = docs.join(format!("screen-{name}.png"));
            std::fs::write(png, png::encode(&actual, 1)).unwrap();
            let big = docs.join(format!("screen-{name}@4x.png"));
            std::fs::write(big, png::encode(&actual, 4)).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual.to_ascii() {
            failures.push(format!(
                "{name}: differs from {}\n{}",
                path.display(),
                row_diff(&expected, &actual.to_ascii())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{}\nAfter an intended change: LINKYMON_UPDATE_GOLDEN=1 cargo test --lib output",
        failures.join("\n")
    );
}

/// Decodes a one-bit grey PNG into (width, height, lit pixels row by row).
fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<bool>) {
    let decoder = ::png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut data = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut data).unwrap();
    assert_eq!(info.color_type, ::png::ColorType::Grayscale);
    assert_eq!(info.bit_depth, ::png::BitDepth::One);
    let mut lit = Vec::new();
    for y in 0..info.height as usize {
        for x in 0..info.width as usize {
            lit.push(data[y * info.line_size + x / 8] & (0x80 >> (x % 8)) != 0);
        }
    }
    (info.width, info.height, lit)
}

fn pixels(fb: &Framebuffer, scale: usize) -> Vec<bool> {
    let mut out = Vec::new();
    for y in 0..64 * scale {
        for x in 0..128 * scale {
            out.push(fb.pixel(x / scale, y / scale));
        }
    }
    out
}

#[test]
fn the_docs_pictures_are_the_golden_screens() {
    for (name, view) in golden_states() {
        let fb = picture(&Screen::new(&view));
        for (suffix, scale) in [("", 1), ("@4x", 4)] {
            let path = root().join(format!("docs/screen-{name}{suffix}.png"));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; LINKYMON_UPDATE_GOLDEN=1 writes it",
                    path.display()
                )
            });
            let (w, h, lit) = decode_png(&bytes);
            assert_eq!((w, h), (128 * scale as u32, 64 * scale as u32), "{name}");
            assert!(
                lit == pixels(&fb, scale),
                "{} is out of date",
                path.display()
            );
        }
    }
}

#[test]
fn the_headline_says_ejp_oui_non_or_the_tempo_colour() {
    let headline = |v: &View| {
        let s = Screen::new(v);
        (s.headline.text, s.headline.inverted)
    };
    assert_eq!(headline(&view_of(&consuming())), ("EJP NON".into(), false));
    assert_eq!(headline(&view_of(&peak())), ("EJP OUI".into(), true));
    assert_eq!(headline(&view_of(&notice())), ("EJP NON".into(), false));
    assert_eq!(headline(&view_of(&tempo_red())), ("ROUGE".into(), true));
    assert_eq!(
        headline(&Status::default().view(0.0, false)),
        ("EJP ?".into(), false)
    );
    let tempo = Screen::new(&view_of(&tempo_red()));
    assert_eq!(tempo.headline_suffix.as_deref(), Some("HP"));
    assert_eq!(tempo.tag.unwrap().text, "demain BLANC");
}

#[test]
fn powers_are_shown_in_kilowatts_like_the_perl_tool() {
    let s = Screen::new(&view_of(&consuming()));
    assert_eq!(
        (s.consumed.as_str(), s.injected.as_str()),
        ("1.45 kW", "0.00 kW")
    );
    let s = Screen::new(&view_of(&injecting()));
    assert_eq!(
        (s.consumed.as_str(), s.injected.as_str()),
        ("0.00 kW", "2.99 kW")
    );
    let s = Screen::new(&Status::default().view(0.0, false));
    assert_eq!(s.consumed, "-.-- kW");
    assert_eq!(s.clock, "");
}

#[test]
fn the_tag_shows_the_most_urgent_thing() {
    let tag = |v: &View| Screen::new(v).tag.map(|t| (t.text, t.inverted));
    assert_eq!(tag(&view_of(&consuming())), Some(("HN".into(), false)));
    assert_eq!(
        tag(&view_of(&standard_hc())),
        Some(("HC à 14:40".into(), false))
    );
    assert_eq!(tag(&view_of(&notice())), Some(("PRÉAVIS EJP".into(), true)));
    assert_eq!(
        tag(&Status::default().view(0.0, false)),
        Some(("pas de données".into(), false))
    );
    let s = after(&notice());
    assert_eq!(tag(&s.view(145.0, false)), Some(("muet 45 s".into(), true)));
    assert_eq!(
        tag(&s.view(100.0 + 7200.0, false)),
        Some(("muet 2 h".into(), true))
    );
    assert_eq!(Screen::new(&s.view(145.0, false)).clock, "21:04:05");
}

// ---------------------------------------------------------------------------------------------
// The PNG driver

#[test]
fn the_png_driver_writes_a_128_by_64_png_whose_pixels_are_the_render() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/screen.png");
    let fb = picture(&Screen::new(&view_of(&peak())));
    {
        let mut screen = png::PngScreen::open(&path).unwrap();
        screen.show(&fb).unwrap();
        let (w, h, lit) = decode_png(&std::fs::read(&path).unwrap());
        assert_eq!((w, h), (128, 64));
        assert!(lit == pixels(&fb, 1), "the PNG is not the render");
        assert!(!dir.path().join("sub/screen.png.tmp").exists());
    }
    // Dropped: the virtual screen goes dark, as the OLED does.
    let (_, _, lit) = decode_png(&std::fs::read(&path).unwrap());
    assert!(lit.iter().all(|p| !p));
}

#[test]
fn an_unwritable_png_path_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let error = png::PngScreen::open(&dir.path().join("file/screen.png")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("display.png_path: cannot write"),
        "{error}"
    );
}

// ---------------------------------------------------------------------------------------------
// What the box believes, and the LED

const DEFAULT_STATES: &[LedState] = &[LedState::EjpPeak, LedState::EjpNotice];

/// The LED over one second, sampled every 125 ms.
fn led_second(view: &View, states: &[LedState]) -> Vec<bool> {
    (0..8)
        .map(|i| led_on(view, states, 200.0 + f64::from(i) * 0.125))
        .collect()
}

#[test]
fn the_led_is_on_in_a_peak_blinks_at_one_hertz_on_a_notice_and_is_off_otherwise() {
    assert_eq!(led_second(&view_of(&peak()), DEFAULT_STATES), [true; 8]);
    assert_eq!(
        led_second(&view_of(&notice()), DEFAULT_STATES),
        [true, true, true, true, false, false, false, false]
    );
    assert_eq!(
        led_second(&view_of(&consuming()), DEFAULT_STATES),
        [false; 8]
    );
    assert_eq!(
        led_second(&Status::default().view(0.0, false), DEFAULT_STATES),
        [false; 8]
    );
}

#[test]
fn led_states_choose_what_lights_it() {
    let red = view_of(&tempo_red());
    assert_eq!(pattern(&red, DEFAULT_STATES), Pattern::Off);
    assert_eq!(pattern(&red, &[LedState::TempoRedToday]), Pattern::Steady);
    let mut red_tomorrow = red.clone();
    red_tomorrow.tempo_today = Some(TempoColour::Blue);
    red_tomorrow.tempo_tomorrow = Some(TempoColour::Red);
    assert_eq!(
        pattern(&red_tomorrow, &[LedState::TempoRedToday]),
        Pattern::Off
    );
    assert_eq!(
        pattern(&red_tomorrow, &[LedState::TempoRedTomorrow]),
        Pattern::Blink
    );
    assert_eq!(
        pattern(&view_of(&notice()), &[LedState::EjpPeak]),
        Pattern::Off
    );
    assert_eq!(pattern(&view_of(&peak()), &[]), Pattern::Off);
}

#[test]
fn a_frame_that_lost_ptec_does_not_end_the_peak() {
    let mut s = after(&peak());
    s.on_reading(&ejp(None, false, "00870", "004"), 101.5, CLOCK);
    assert_eq!(s.view(102.0, false).ejp, Some(true));
    s.on_reading(&ejp(Some("HN.."), false, "00870", "004"), 103.0, CLOCK);
    assert_eq!(s.view(103.5, false).ejp, Some(false));
}

#[test]
fn a_notice_outlives_one_frame_without_pejp_and_ends_with_the_peak() {
    let mut s = after(&notice());
    s.on_reading(&consuming(), 101.5, CLOCK);
    assert!(s.view(102.0, false).notice, "one lost PEJP group");
    s.on_reading(&consuming(), 100.0 + NOTICE_HOLD_S, CLOCK);
    assert!(!s.view(111.0, false).notice, "gone for the hold time");
    let mut s = after(&notice());
    s.on_reading(&peak(), 101.5, CLOCK);
    let v = s.view(102.0, false);
    assert!(v.ejp == Some(true) && !v.notice);
}

#[test]
fn a_silent_line_is_marked_then_its_facts_are_forgotten() {
    let s = after(&peak());
    assert_eq!(s.view(100.0 + SILENT_AFTER_S - 1.0, false).silent_s, None);
    let silent = s.view(100.0 + SILENT_AFTER_S + 5.0, false);
    assert_eq!(silent.silent_s, Some(35));
    assert_eq!(silent.ejp, Some(true), "a short silence keeps the peak");
    let gone = s.view(100.0 + FORGET_AFTER_S + 1.0, false);
    assert_eq!((gone.ejp, gone.consumption_va), (None, None));
    assert_eq!(
        gone.last_frame,
        Some(CLOCK),
        "the screen still says when it stopped"
    );
    assert!(!led_on(&gone, DEFAULT_STATES, 0.0));
}

#[test]
fn the_relay_contact_is_a_second_ejp_source() {
    let on = |s: &Status, use_for_ejp| led_on(&s.view(101.0, use_for_ejp), DEFAULT_STATES, 0.7);
    // The TIC says normal hours; the contact closed makes a peak only when it counts for EJP.
    let mut s = after(&consuming());
    s.on_relay(Some(true));
    assert!(on(&s, true));
    assert!(!on(&s, false));
    assert!(s.view(101.0, true).relay_peak);
    // A TIC peak lights the LED whatever the contact says.
    let mut s = after(&peak());
    s.on_relay(Some(false));
    assert!(on(&s, true));
    assert!(!s.view(101.0, true).relay_peak);
    // No TIC at all: the contact decides, open included.
    let mut s = Status::default();
    s.on_relay(Some(false));
    assert_eq!(s.view(0.0, true).ejp, Some(false));
    s.on_relay(Some(true));
    assert_eq!(s.view(0.0, true).ejp, Some(true));
    assert_eq!(Screen::new(&s.view(0.0, true)).headline.text, "EJP OUI");
    s.on_relay(None);
    assert_eq!(s.view(0.0, true).ejp, None);
}

// ---------------------------------------------------------------------------------------------
// The shell, on in-memory devices, with paused time

#[derive(Clone, Default)]
struct Recorder {
    shown: Arc<Mutex<Vec<Framebuffer>>>,
    cleared: Arc<Mutex<u32>>,
    levels: Arc<Mutex<Vec<(Duration, bool)>>>,
}

struct FakeScreen(Recorder);

impl Display for FakeScreen {
    fn show(&mut self, picture: &Framebuffer) -> Result<(), OutputError> {
        self.0.shown.lock().unwrap().push(picture.clone());
        Ok(())
    }
    fn clear(&mut self) -> Result<(), OutputError> {
        *self.0.cleared.lock().unwrap() += 1;
        Ok(())
    }
}

struct FakeLed(Recorder, tokio::time::Instant);

impl Light for FakeLed {
    fn set(&mut self, on: bool) {
        let mut levels = self.0.levels.lock().unwrap();
        if levels.last().map(|(_, l)| *l) != Some(on) {
            levels.push((self.1.elapsed(), on));
        }
    }
}

struct Harness {
    rec: Recorder,
    latest: watch::Sender<Option<Arc<Reading>>>,
    relay: watch::Sender<Option<bool>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start_box(states: Vec<LedState>) -> Harness {
    let rec = Recorder::default();
    let (latest, latest_rx) = watch::channel(None);
    let (relay, relay_rx) = watch::channel(None);
    let shutdown = CancellationToken::new();
    let devices = Devices {
        display: Some(Box::new(FakeScreen(rec.clone()))),
        led: Some(Box::new(FakeLed(rec.clone(), tokio::time::Instant::now()))),
        states,
        relay_for_ejp: true,
    };
    let task = tokio::spawn(drive(
        devices,
        latest_rx,
        relay_rx,
        shutdown.clone(),
        || CLOCK,
    ));
    Harness {
        rec,
        latest,
        relay,
        shutdown,
        task,
    }
}

/// Lets the box task run for `ms` milliseconds of paused time.
async fn run_for(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn the_screen_is_written_only_when_the_picture_changes() {
    let h = start_box(DEFAULT_STATES.to_vec());
    run_for(500).await;
    assert_eq!(
        h.rec.shown.lock().unwrap().len(),
        1,
        "the no-data screen, once"
    );
    let reading = Arc::new(consuming());
    for _ in 0..4 {
        h.latest.send_replace(Some(reading.clone()));
        run_for(1500).await;
    }
    {
        let shown = h.rec.shown.lock().unwrap();
        assert_eq!(shown.len(), 2, "the same frame four times is one picture");
        assert_eq!(shown[1], picture(&Screen::new(&view_of(&consuming()))));
    }
    run_for(31_000).await;
    let last = h.rec.shown.lock().unwrap().last().cloned().unwrap();
    assert_ne!(
        last,
        picture(&Screen::new(&view_of(&consuming()))),
        "marked silent"
    );
    h.shutdown.cancel();
    h.task.await.unwrap();
    assert_eq!(*h.rec.cleared.lock().unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_led_blinks_during_a_notice_and_goes_out_at_shutdown() {
    let h = start_box(DEFAULT_STATES.to_vec());
    h.latest.send_replace(Some(Arc::new(notice())));
    run_for(3000).await;
    let changes = h.rec.levels.lock().unwrap().clone();
    // On and off every half second.
    assert!(changes.len() >= 5, "{changes:?}");
    for pair in changes.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(250) && gap <= Duration::from_millis(750),
            "{changes:?}"
        );
    }
    h.latest.send_replace(Some(Arc::new(peak())));
    run_for(2000).await;
    let tail: Vec<bool> = h
        .rec
        .levels
        .lock()
        .unwrap()
        .iter()
        .map(|(_, l)| *l)
        .collect();
    assert_eq!(tail.last(), Some(&true));
    let steady_since = h.rec.levels.lock().unwrap().len();
    run_for(2000).await;
    assert_eq!(
        h.rec.levels.lock().unwrap().len(),
        steady_since,
        "steady in a peak"
    );
    h.shutdown.cancel();
    h.task.await.unwrap();
    assert_eq!(
        h.rec.levels.lock().unwrap().last().map(|(_, l)| *l),
        Some(false)
    );
}

#[tokio::test(start_paused = true)]
async fn the_relay_channel_lights_the_led_without_any_tic_data() {
    let h = start_box(DEFAULT_STATES.to_vec());
    run_for(500).await;
    h.relay.send_replace(Some(true));
    run_for(500).await;
    assert_eq!(
        h.rec.levels.lock().unwrap().last().map(|(_, l)| *l),
        Some(true)
    );
    h.relay.send_replace(Some(false));
    run_for(500).await;
    assert_eq!(
        h.rec.levels.lock().unwrap().last().map(|(_, l)| *l),
        Some(false)
    );
    h.shutdown.cancel();
    h.task.await.unwrap();
}

struct FakeContact(Arc<Mutex<bool>>);

impl Contact for FakeContact {
    fn is_high(&mut self) -> bool {
        *self.0.lock().unwrap()
    }
}

#[tokio::test(start_paused = true)]
async fn the_relay_sampler_debounces_and_reports_changes() {
    let level = Arc::new(Mutex::new(true)); // pull-up, contact open
    let config = RelayConfig {
        gpio: Some(27),
        ..RelayConfig::default()
    };
    let (tx, mut rx) = watch::channel(None);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn({
        let input = FakeContact(level.clone());
        let shutdown = shutdown.clone();
        async move { sample_contact(input, &config, tx, shutdown).await }
    });
    run_for(100).await;
    assert_eq!(*rx.borrow_and_update(), Some(false), "open, once settled");
    *level.lock().unwrap() = false;
    run_for(20).await;
    *level.lock().unwrap() = true; // a bounce
    run_for(20).await;
    *level.lock().unwrap() = false;
    run_for(30).await;
    assert!(!rx.has_changed().unwrap(), "not yet held for 50 ms");
    run_for(40).await;
    assert_eq!(*rx.borrow_and_update(), Some(true), "closed");
    shutdown.cancel();
    task.await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// The real drivers, off a Raspberry Pi

/// Whether this machine has the devices: then these tests have nothing to prove.
fn on_a_pi() -> bool {
    Path::new("/dev/gpiomem").exists() || Path::new("/dev/i2c-1").exists()
}

#[test]
fn off_a_pi_the_real_drivers_fail_with_errors_that_say_what_is_missing() {
    if on_a_pi() {
        eprintln!("GPIO or I2C present: skipping the off-a-Pi checks");
        return;
    }
    let error = oled::Oled::open(1, 0x3C).unwrap_err();
    assert!(
        matches!(error, OutputError::NoI2cBus { bus: 1, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("cannot open /dev/i2c-1"), "{message}");
    assert!(message.contains("display.driver: none"), "{message}");

    let error = gpio::LedPin::open(17, false).unwrap_err();
    let message = error.to_string();
    assert!(
        message.starts_with("led.gpio: 17: no Raspberry Pi GPIO here"),
        "{message}"
    );
    let error = gpio::ContactPin::open(27, crate::config::Pull::Up).unwrap_err();
    assert!(error.to_string().starts_with("relay.gpio: 27:"), "{error}");
}

/// Log lines written while the returned guard lives.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Arc::new(Mutex::new(Vec::new()));
    let sink = Sink(buf.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    (buf, tracing::subscriber::set_default(subscriber))
}

fn lines(buf: &Arc<Mutex<Vec<u8>>>) -> Vec<String> {
    String::from_utf8(buf.lock().unwrap().clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn off_a_pi_run_box_logs_one_warning_per_device_and_returns() {
    if on_a_pi() {
        return;
    }
    let (logs, _guard) = capture_logs();
    let config = BoxConfig {
        display: DisplayConfig {
            driver: crate::config::DisplayDriver::Ssd1306,
            ..DisplayConfig::default()
        },
        led: LedConfig {
            gpio: Some(17),
            ..LedConfig::default()
        },
        relay_for_ejp: false,
    };
    let (_latest_tx, latest) = watch::channel(None);
    let (_relay_tx, relay) = watch::channel(None);
    let run = run_box(config, latest, relay, CancellationToken::new());
    tokio::time::timeout(Duration::from_secs(5), run)
        .await
        .expect("with no device to drive, run_box returns at once");
    let lines = lines(&logs);
    let warnings: Vec<&String> = lines.iter().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{lines:#?}");
    assert!(warnings[0].contains("/dev/i2c-1") && warnings[0].contains("without the screen"));
    assert!(warnings[1].contains("led.gpio: 17") && warnings[1].contains("without the LED"));
    assert!(
        lines.iter().any(|l| l.contains("box: no screen, no LED")),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn off_a_pi_run_relay_logs_once_and_leaves_the_state_unknown() {
    if on_a_pi() {
        return;
    }
    let (logs, _guard) = capture_logs();
    let (tx, rx) = watch::channel(Some(true));
    tx.send_replace(None);
    let config = RelayConfig {
        gpio: Some(27),
        ..RelayConfig::default()
    };
    tokio::time::timeout(
        Duration::from_secs(5),
        run_relay(config, tx, CancellationToken::new()),
    )
    .await
    .expect("returns at once");
    let lines = lines(&logs);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("WARN") && lines[0].contains("relay.gpio: 27"));
    assert_eq!(*rx.borrow(), None);
}

#[test]
fn the_box_config_counts_the_relay_only_when_it_is_wired_and_meant_for_ejp() {
    let mut config = crate::config::Config::default();
    assert!(!BoxConfig::from(&config).relay_for_ejp);
    config.relay.gpio = Some(27);
    assert!(BoxConfig::from(&config).relay_for_ejp);
    config.relay.use_for_ejp = false;
    assert!(!BoxConfig::from(&config).relay_for_ejp);
}

/// A screen whose first `failures` writes fail, counting every attempt.
struct FlakyScreen {
    attempts: Arc<Mutex<u32>>,
    failures: u32,
}

impl Display for FlakyScreen {
    fn show(&mut self, _: &Framebuffer) -> Result<(), OutputError> {
        let mut attempts = self.attempts.lock().unwrap();
        *attempts += 1;
        if *attempts <= self.failures {
            return Err(OutputError::ScreenWrite {
                reason: "BusWriteError".into(),
            });
        }
        Ok(())
    }
    fn clear(&mut self) -> Result<(), OutputError> {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_screen_is_tried_again_once_a_minute_not_on_every_change() {
    let attempts = Arc::new(Mutex::new(0));
    let (latest, latest_rx) = watch::channel(None);
    let latest = Arc::new(latest);
    let (_relay, relay_rx) = watch::channel(None);
    let shutdown = CancellationToken::new();
    let devices = Devices {
        display: Some(Box::new(FlakyScreen {
            attempts: attempts.clone(),
            failures: 1,
        })),
        led: None,
        states: Vec::new(),
        relay_for_ejp: false,
    };
    let task = tokio::spawn(drive(
        devices,
        latest_rx,
        relay_rx,
        shutdown.clone(),
        || CLOCK,
    ));
    run_for(100).await;
    assert_eq!(*attempts.lock().unwrap(), 1, "the first picture fails");
    // Frames every second; the picture changes at once (no data, then consuming, then peak).
    let feed = |reading: Reading, seconds: u32| {
        let latest = latest.clone();
        async move {
            let reading = Arc::new(reading);
            for _ in 0..seconds {
                latest.send_replace(Some(reading.clone()));
                run_for(1000).await;
            }
        }
    };
    feed(consuming(), 20).await;
    feed(peak(), 20).await;
    assert_eq!(*attempts.lock().unwrap(), 1, "no retry within the minute");
    feed(peak(), 25).await;
    assert_eq!(
        *attempts.lock().unwrap(),
        2,
        "tried again after a minute, and it worked"
    );
    feed(consuming(), 5).await;
    assert_eq!(
        *attempts.lock().unwrap(),
        3,
        "back to drawing each change, once"
    );
    shutdown.cancel();
    task.await.unwrap();
}
