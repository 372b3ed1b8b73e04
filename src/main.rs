//! The `linkymon` binary: parse the command line, dispatch, map errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use linkymon::commands::decode::{self, Input};
use linkymon::tic::{Mode, ModeHint};

/// The Linky meter's téléinformation to MQTT, a screen, an LED and daily logs.
#[derive(Debug, Parser)]
#[command(name = "linkymon", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("linkymon: {e:#}");
            ExitCode::from(1)
        }
    }
}
