//! `linkymon run` with the box configured on a machine that has no I²C and no GPIO: one clear
//! log line per missing device, MQTT goes on, and the PNG virtual screen shows the meter.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Broker, Running, SIM_ID, Subscriber, write_config};

/// Whether this machine has the devices the tests expect to be missing.
fn on_a_pi() -> bool {
    Path::new("/dev/gpiomem").exists() || Path::new("/dev/i2c-1").exists()
}

/// The lit pixels of a 128×64 one-bit PNG, or `None` when it is not one.
fn lit_pixels(path: &Path) -> Option<u32> {
    let bytes = std::fs::read(path).ok()?;
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .ok()?;
    let mut data = vec![0; reader.output_buffer_size()?];
    let info = reader.next_frame(&mut data).ok()?;
    ((info.width, info.height) == (128, 64)).then(|| data.iter().map(|b| b.count_ones()).sum())
}

#[test]
fn without_gpio_the_led_and_relay_log_once_and_the_png_screen_and_mqtt_go_on() {
    if on_a_pi() {
        return;
    }
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let screen = dir.path().join("screen/screen.png");
    let config = write_config(
        dir.path(),
        broker.port,
        &format!(
            "meter:\n  port: simulate\n  simulate_speed: 60\npublish:\n  interval: 0\n\
             display:\n  driver: png\n  png_path: {}\nled:\n  gpio: 17\nrelay:\n  gpio: 27\n",
            screen.display()
        ),
    );
    let sub = Subscriber::start(broker.port, &[&format!("linky/{SIM_ID}/state")]);
    let mut daemon = Running::start(&config, "run");
    sub.wait_count(&format!("linky/{SIM_ID}/state"), 3, Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while lit_pixels(&screen).is_none_or(|lit| lit == 0) {
        assert!(
            Instant::now() < deadline,
            "no picture in {}",
            screen.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.signal("TERM");
    let status = daemon.wait(Duration::from_secs(3));
    assert!(status.success(), "{status}");
    assert_eq!(
        lit_pixels(&screen),
        Some(0),
        "the screen is cleared at shutdown"
    );
    let stderr = daemon.stderr().join("\n");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(
        warnings.iter().any(|l| l.contains("led.gpio: 17")),
        "{stderr}"
    );
    assert!(
        warnings.iter().any(|l| l.contains("relay.gpio: 27")),
        "{stderr}"
    );
}

#[test]
fn without_i2c_an_ssd1306_screen_logs_once_and_mqtt_goes_on() {
    if on_a_pi() {
        return;
    }
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        broker.port,
        "meter:\n  port: simulate\n  simulate_speed: 60\npublish:\n  interval: 0\n\
         display:\n  driver: ssd1306\n",
    );
    let sub = Subscriber::start(broker.port, &[&format!("linky/{SIM_ID}/state")]);
    let mut daemon = Running::start(&config, "run");
    let states = sub.wait_count(&format!("linky/{SIM_ID}/state"), 5, Duration::from_secs(15));
    assert!(
        states.len() >= 5,
        "the daemon keeps publishing: {} states",
        states.len()
    );
    daemon.signal("TERM");
    let status = daemon.wait(Duration::from_secs(3));
    assert!(status.success(), "{status}");
    let stderr = daemon.stderr().join("\n");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains("/dev/i2c-1") && warnings[0].contains("without the screen"),
        "{stderr}"
    );
}
