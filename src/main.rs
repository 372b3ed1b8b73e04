//! The `linkymon` binary: parse the command line, dispatch, map errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use linkymon::commands::decode::{self, Input};
use linkymon::commands::demo::DemoOptions;
use linkymon::config::{Config, ConfigError};
use linkymon::tic::{Mode, ModeHint};
use tokio_util::sync::CancellationToken;

/// The Linky meter's téléinformation to MQTT, a screen, an LED and daily logs.
#[derive(Debug, Parser)]
#[command(name = "linkymon", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything on this machine, no meter and no broker needed: a simulated meter, an
    /// embedded MQTT broker, the daemon with a virtual screen, and the logger.
    Demo {
        /// Where the logs, pages and screen go.
        #[arg(long, value_name = "DIR", default_value = "linkymon-demo")]
        data: PathBuf,
        /// The embedded broker's port on 127.0.0.1 (MQTT 3.1.1; the next port serves the
        /// logger's MQTT 5).
        #[arg(long, value_name = "N", default_value_t = 1883)]
        port: u16,
        /// Simulated seconds per real second (60: an EJP day in 24 minutes).
        // Negative numbers reach `parse_speed`, which says what is wrong, instead of clap
        // taking `-3` for an unknown flag.
        #[arg(long, value_name = "X", default_value_t = 60.0, value_parser = parse_speed,
              allow_negative_numbers = true)]
        speed: f64,
    },
    /// The edge daemon: read the meter, decode, publish to MQTT with Home Assistant discovery.
    Run {
        /// Configuration file (default: $LINKYMON_CONFIG, then /etc/linkymon/config.yaml).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// The logger: daily logs, graph pages and today's cost from the daemon's MQTT states.
    Logger {
        /// Configuration file (default: $LINKYMON_CONFIG, then /etc/linkymon/config.yaml).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// (Re)build graph pages from daily logs, ours or the Perl LinkyMonitor's.
    Graph {
        /// Configuration file (default: $LINKYMON_CONFIG, then /etc/linkymon/config.yaml).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The daily logs (`YYYY-MM-DD.log`); pages go to `logger.pages_dir`.
        #[arg(required = true, value_name = "LOG")]
        logs: Vec<PathBuf>,
    },
    /// Decode a raw TIC capture (or stdin) into one JSON object per valid frame.
    Decode {
        /// The TIC dialect; auto decides from each group's separator.
        #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
        mode: ModeArg,
        /// The capture to read; `-` or nothing for standard input.
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ModeArg {
    Auto,
    Historic,
    Standard,
}

impl From<ModeArg> for ModeHint {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Auto => ModeHint::Auto,
            ModeArg::Historic => ModeHint::Force(Mode::Historic),
            ModeArg::Standard => ModeHint::Force(Mode::Standard),
        }
    }
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!(
            "`{text}` is not a positive number of simulated seconds per second"
        )),
    }
}

fn main() -> ExitCode {
    reserve_standard_fds();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode { mode, file } => {
            let input = match file {
                Some(path) if path.as_os_str() != "-" => Input::File(path),
                _ => Input::Stdin,
            };
            decode::run(input, mode.into())
        }
        Command::Run { config } => with_config(config).and_then(|config| {
            with_runtime(|shutdown| linkymon::commands::run::run(config, shutdown))
        }),
        Command::Logger { config } => with_config(config).and_then(|config| {
            with_runtime(|shutdown| linkymon::commands::logger::run(config, shutdown))
        }),
        Command::Demo { data, port, speed } => {
            init_logging();
            let options = DemoOptions { data, port, speed };
            with_runtime(|shutdown| linkymon::commands::demo::run(options, shutdown))
        }
        Command::Graph { config, logs } => with_config(config)
            .and_then(|config| linkymon::commands::graph::run(&config, &logs).map(|_| ())),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Not `eprintln!`, which panics (exit 101) when stderr is a closed pipe: the exit
            // code must say what went wrong even when nobody reads the message.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "linkymon: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 for what the user must fix in the configuration or command line, 1 for the rest. A
/// [`ConfigError`] anywhere in the chain counts (a subsystem may add its context around it).
fn exit_code(e: &anyhow::Error) -> u8 {
    if e.chain().any(|cause| cause.is::<ConfigError>()) {
        2
    } else {
        1
    }
}

/// Makes sure file descriptors 0, 1 and 2 are open, on /dev/null if they were closed
/// (`linkymon run 2>&-`). Otherwise the first file linkymon opens (the config, the spool)
/// would get descriptor 2, and log lines would be written into it.
fn reserve_standard_fds() {
    use std::os::fd::{AsRawFd, IntoRawFd};
    // `open` returns the lowest free descriptor: each one at 0..=2 is a hole now filled and
    // kept open for the life of the process; the first one above 2 is closed again.
    while let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        if null.as_raw_fd() > 2 {
            break; // dropped: closed again
        }
        let _kept_open = null.into_raw_fd();
    }
}

/// Runs a daemon on a single-threaded runtime (a Pi Zero has one core), with the signal
/// handler that turns SIGINT/SIGTERM/SIGHUP into a clean shutdown.
fn with_runtime<F, Fut>(daemon: F) -> anyhow::Result<()>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        daemon(shutdown).await
    })
}

/// Loads the configuration, starts logging to stderr and logs what the configuration warns of.
fn with_config(config: Option<PathBuf>) -> anyhow::Result<Config> {
    let (config, warnings) = Config::load_with_warnings(config.as_deref())?;
    init_logging();
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    Ok(config)
}

fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // The embedded broker's own lines (every client connecting, and disconnecting at error
    // level) would drown ours: linkymon::broker logs what matters about it.
    let filter = Targets::new()
        .with_default(LevelFilter::INFO)
        .with_target(linkymon::broker::LOG_TARGET, LevelFilter::OFF);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(QuietStderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .with(filter)
        .init();
}

/// Cancels `shutdown` on SIGTERM, SIGINT or SIGHUP, for `run` and `logger` alike. SIGHUP is
/// what a closing terminal or SSH session sends: it must stop as cleanly as SIGTERM (screen
/// cleared, LED off, spool synced, the logger's unfinished line saved), not kill the process.
async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT/SIGHUP");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
        _ = hup.recv() => {}
    }
    tracing::info!("stopping");
    shutdown.cancel();
}

/// Standard error for the log lines, with write errors ignored: a log line that cannot be
/// written (stderr a closed pipe) is lost, but never stops or panics the daemon.
struct QuietStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for QuietStderr {
    type Writer = QuietWriter;

    fn make_writer(&'a self) -> QuietWriter {
        QuietWriter
    }
}

struct QuietWriter;

impl std::io::Write for QuietWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
