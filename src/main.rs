//! The `linkymon` binary: parse the command line, dispatch, map errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use linkymon::commands::decode::{self, Input};
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
    /// The edge daemon: read the meter, decode, publish to MQTT with Home Assistant discovery.
    Run {
        /// Configuration file (default: $LINKYMON_CONFIG, then /etc/linkymon/config.yaml).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode { mode, file } => {
            let input = match file {
                Some(path) if path.as_os_str() != "-" => Input::File(path),
                _ => Input::Stdin,
            };
            decode::run(input, mode.into())
        }
        Command::Run { config } => with_runtime(config, |config, shutdown| async move {
            linkymon::commands::run::run(config, shutdown).await
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linkymon: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// 2 for what the user must fix in the configuration or command line, 1 for the rest.
fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<ConfigError>().is_some() {
        2
    } else {
        1
    }
}

/// Loads the configuration, starts logging, a single-threaded runtime (a Pi Zero has one
/// core) and the signal handler that turns SIGINT/SIGTERM into a clean shutdown.
fn with_runtime<F, Fut>(config: Option<PathBuf>, daemon: F) -> anyhow::Result<()>
where
    F: FnOnce(Config, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = Config::load(config.as_deref())?;
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
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .with_target(false),
        )
        .with(filter)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(stop_on_signal(shutdown.clone()));
        daemon(config, shutdown).await
    })
}

async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for SIGTERM/SIGINT");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tracing::info!("stopping");
    shutdown.cancel();
}
