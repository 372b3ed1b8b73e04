//! The box's async shell: opens the devices, follows the latest reading and the relay, and
//! sets the screen and the LED to what the pure core says.
//!
//! [`run_box`] wakes on every new reading and every [`TICK`] (the blink, the clock of the
//! "silent" mark), computes the [`View`](super::View), sets the LED, renders the picture and
//! sends it to the screen only when it differs from the one shown. Screen writes, which block
//! (I²C, a file), run on tokio's blocking pool so the acquisition loop and MQTT never wait on
//! them. [`run_relay`] samples the contact every [`SAMPLE_EVERY`] through the
//! [`Debouncer`] and puts each settled change on a watch channel.
//!
//! A device that cannot be opened is logged once, with what is missing, and the rest goes on;
//! a screen that stops answering is logged once and tried again every [`RETRY_SCREEN`].

use std::sync::Arc;
use std::time::Duration;

use jiff::civil::Time;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::framebuffer::Framebuffer;
use super::gpio::{ContactPin, LedPin};
use super::led::led_on;
use super::oled::Oled;
use super::png::PngScreen;
use super::relay::{Debouncer, contact_closed};
use super::screen::{Screen, picture};
use super::status::Status;
use super::{Contact, Display, Light, OutputError};
use crate::config::{Config, DisplayConfig, DisplayDriver, LedConfig, LedState, RelayConfig};
use crate::meter::Reading;

/// How often the box looks again without a new reading: four times a second gives a 1 Hz
/// blink with even halves, and the "silent" mark within a second.
pub const TICK: Duration = Duration::from_millis(250);

/// How often the relay input is read: five samples within the default 50 ms debounce.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// How long to wait before trying a screen that failed again: often enough to come back
/// after a loose wire is fixed, rarely enough not to flood the log or the bus.
pub const RETRY_SCREEN: Duration = Duration::from_secs(60);

/// A screen the shell can move to the blocking pool and back.
pub type BoxedDisplay = Box<dyn Display + Send>;
/// An LED the shell owns.
pub type BoxedLight = Box<dyn Light + Send>;

/// What [`run_box`] needs from the configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxConfig {
    /// `display:`.
    pub display: DisplayConfig,
    /// `led:`.
    pub led: LedConfig,
    /// The relay is wired and counts as an EJP source (`relay.gpio` set, `relay.use_for_ejp`).
    pub relay_for_ejp: bool,
}

impl From<&Config> for BoxConfig {
    fn from(config: &Config) -> Self {
        BoxConfig {
            display: config.display.clone(),
            led: config.led.clone(),
            relay_for_ejp: config.relay.gpio.is_some() && config.relay.use_for_ejp,
        }
    }
}

/// Opens the configured screen; `None` for `driver: none` or when it cannot be had (logged).
pub fn open_display(config: &DisplayConfig) -> Option<BoxedDisplay> {
    let opened: Result<BoxedDisplay, OutputError> = match config.driver {
        DisplayDriver::None => return None,
        DisplayDriver::Ssd1306 => {
            Oled::open(config.i2c_bus, config.i2c_address).map(|d| Box::new(d) as BoxedDisplay)
        }
        DisplayDriver::Png => PngScreen::open(&config.png_path).map(|d| Box::new(d) as _),
    };
    opened
        .inspect_err(|e| warn!("{e}; linkymon goes on without the screen"))
        .ok()
}

/// Opens the configured LED; `None` for `gpio: null` or when it cannot be had (logged).
pub fn open_led(config: &LedConfig) -> Option<BoxedLight> {
    let pin = config.gpio?;
    LedPin::open(pin, config.active_low)
        .map(|l| Box::new(l) as BoxedLight)
        .inspect_err(|e| warn!("{e}; linkymon goes on without the LED"))
        .ok()
}

/// Runs the screen and the LED until `shutdown`, then blanks the screen and puts the LED out.
///
/// `latest` is the acquisition loop's watch of the latest reading; `relay` is
/// [`run_relay`]'s (a channel that stays at `None` when the relay is not wired). Returns at
/// once, after one log line, when there is neither a screen nor an LED to drive.
pub async fn run_box(
    config: BoxConfig,
    latest: watch::Receiver<Option<Arc<Reading>>>,
    relay: watch::Receiver<Option<bool>>,
    shutdown: CancellationToken,
) {
    let display = open_display(&config.display);
    let led = open_led(&config.led);
    let screen = match (&display, config.display.driver) {
        (Some(_), DisplayDriver::Ssd1306) => format!(
            "screen: SSD1306 at 0x{:02X} on /dev/i2c-{}",
            config.display.i2c_address, config.display.i2c_bus
        ),
        (Some(_), _) => format!("screen: {}", config.display.png_path.display()),
        (None, DisplayDriver::None) => "no screen (display.driver: none)".to_owned(),
        (None, _) => "no screen".to_owned(),
    };
    let light = match (&led, config.led.gpio) {
        (Some(_), Some(pin)) => format!("LED on GPIO {pin}"),
        (_, None) => "no LED (led.gpio: null)".to_owned(),
        (None, Some(_)) => "no LED".to_owned(),
    };
    info!("box: {screen}, {light}");
    if display.is_none() && led.is_none() {
        return;
    }
    let clock = || jiff::ZonedDateTime::now().time();
    drive(
        Devices {
            display,
            led,
            states: config.led.states,
            relay_for_ejp: config.relay_for_ejp,
        },
        latest,
        relay,
        shutdown,
        clock,
    )
    .await;
}

/// The opened devices and how to drive them.
pub(crate) struct Devices {
    pub display: Option<BoxedDisplay>,
    pub led: Option<BoxedLight>,
    pub states: Vec<LedState>,
    pub relay_for_ejp: bool,
}

/// The loop of [`run_box`], on devices already opened; `clock` gives the local time a
/// reading arrived (injected so tests see fixed pictures).
pub(crate) async fn drive(
    devices: Devices,
    mut latest: watch::Receiver<Option<Arc<Reading>>>,
    mut relay: watch::Receiver<Option<bool>>,
    shutdown: CancellationToken,
    clock: impl Fn() -> Time,
) {
    let Devices {
        mut display,
        mut led,
        states,
        relay_for_ejp,
    } = devices;
    let start = Instant::now();
    let secs = || start.elapsed().as_secs_f64();
    let mut status = Status::default();
    if let Some(reading) = latest.borrow_and_update().clone() {
        status.on_reading(&reading, 0.0, clock());
    }
    status.on_relay(*relay.borrow_and_update());
    let mut screen = ScreenState::default();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let (mut latest_open, mut relay_open) = (true, true);
    loop {
        tokio::select! {
            changed = latest.changed(), if latest_open => match changed {
                Ok(()) => {
                    if let Some(reading) = latest.borrow_and_update().clone() {
                        status.on_reading(&reading, secs(), clock());
                    }
                }
                // The acquisition ended (end of a replay): keep showing, now going silent.
                Err(_) => latest_open = false,
            },
            changed = relay.changed(), if relay_open => match changed {
                Ok(()) => status.on_relay(*relay.borrow_and_update()),
                Err(_) => relay_open = false,
            },
            _ = tick.tick() => {}
            () = shutdown.cancelled() => break,
        }
        let now = secs();
        let view = status.view(now, relay_for_ejp);
        if let Some(led) = led.as_mut() {
            led.set(led_on(&view, &states, now));
        }
        if display.is_some() {
            let wanted = picture(&Screen::new(&view));
            display = screen.update(display, wanted, now).await;
        }
    }
    if let Some(led) = led.as_mut() {
        led.set(false);
    }
    if let Some(d) = display.as_mut()
        && let Err(e) = d.clear()
    {
        warn!("clearing the screen at shutdown: {e}");
    }
}

/// What is on the screen, and whether it is failing.
#[derive(Default)]
struct ScreenState {
    shown: Option<Framebuffer>,
    /// While failing: when to try again.
    retry_at: Option<f64>,
}

impl ScreenState {
    /// Shows `wanted` if it differs from what is shown and the screen is not resting after a
    /// failure. The display travels to the blocking pool and back; a panic there loses it.
    async fn update(
        &mut self,
        display: Option<BoxedDisplay>,
        wanted: Framebuffer,
        now: f64,
    ) -> Option<BoxedDisplay> {
        let mut d = display?;
        if self.shown.as_ref() == Some(&wanted) || self.retry_at.is_some_and(|t| now < t) {
            return Some(d);
        }
        let job = tokio::task::spawn_blocking(move || {
            let result = d.show(&wanted);
            (d, wanted, result)
        });
        let (d, wanted, result) = match job.await {
            Ok(done) => done,
            Err(e) => {
                warn!("the screen driver failed ({e}); linkymon goes on without the screen");
                return None;
            }
        };
        match result {
            Ok(()) => {
                if self.retry_at.take().is_some() {
                    info!("the screen answers again");
                }
                self.shown = Some(wanted);
            }
            Err(e) => {
                if self.retry_at.is_none() {
                    warn!(
                        "{e}; linkymon goes on and tries the screen again every {} s",
                        RETRY_SCREEN.as_secs()
                    );
                }
                self.retry_at = Some(now + RETRY_SCREEN.as_secs_f64());
                self.shown = None;
            }
        }
        Some(d)
    }
}

/// Reads the relay contact until `shutdown` and puts each settled change on `state`
/// (`Some(true)`: closed). Returns at once when `relay.gpio` is not set, and after one log
/// line when the pin cannot be had, leaving `state` at `None`.
pub async fn run_relay(
    config: RelayConfig,
    state: watch::Sender<Option<bool>>,
    shutdown: CancellationToken,
) {
    let Some(pin) = config.gpio else { return };
    let input = match ContactPin::open(pin, config.pull) {
        Ok(input) => input,
        Err(e) => {
            warn!("{e}; linkymon goes on without the relay contact");
            return;
        }
    };
    info!("relay contact: reading GPIO {pin}");
    sample_contact(input, &config, state, shutdown).await;
}

/// The loop of [`run_relay`] on an opened input.
pub(crate) async fn sample_contact(
    mut input: impl Contact,
    config: &RelayConfig,
    state: watch::Sender<Option<bool>>,
    shutdown: CancellationToken,
) {
    let start = Instant::now();
    let mut debouncer = Debouncer::new(config.debounce.as_secs_f64());
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => break,
        }
        let closed = contact_closed(input.is_high(), config.active_low);
        if let Some(closed) = debouncer.sample(closed, start.elapsed().as_secs_f64()) {
            info!("relay contact {}", if closed { "closed" } else { "open" });
            state.send_replace(Some(closed));
        }
    }
}
