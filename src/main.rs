//! `divolte-collector`: command line, logging, and the two startup phases.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "divolte-collector", version, about = "Clickstream collector compatible with Divolte Collector")]
struct Cli {
    /// Configuration file (TOML). Without it the embedded defaults run.
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a configuration file and exit (0 when valid).
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_thread_names(true)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    if let Some(Command::CheckConfig { file }) = &cli.command {
        return match divolte::config::load(Some(file)) {
            Ok(_) => {
                println!("{}: configuration is valid.", file.display());
                ExitCode::SUCCESS
            }
            Err(errors) => {
                eprint!("{}: {errors}", file.display());
                ExitCode::FAILURE
            }
        };
    }
    let config = match divolte::config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    let source = cli.config.as_ref().map_or_else(|| "embedded defaults".to_owned(), |p| p.display().to_string());
    match divolte::startup::run(config, &source) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "Collector failed.");
            ExitCode::FAILURE
        }
    }
}
