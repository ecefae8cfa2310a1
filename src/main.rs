//! `divolte-collector`: command line, logging, and the two startup phases.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "divolte-collector", version, about = "Clickstream collector compatible with Divolte Collector")]
struct Cli {
    /// Configuration file: TOML, or the original's HOCON (`.conf`). Without
    /// it the embedded defaults run.
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
        /// Also connect to every sink's store or broker.
        #[arg(long)]
        connect: bool,
    },
    /// Print a HOCON configuration of the original as TOML (comments say
    /// what was translated or dropped), and check it.
    ImportConfig {
        /// The HOCON file (`divolte-collector.conf`).
        file: PathBuf,
    },
    /// Run a mapping script on events read from stdin (one JSON object per
    /// line) and print each record as JSON.
    MappingTest {
        /// The Avro schema (.avsc).
        #[arg(long, short = 's')]
        schema: PathBuf,
        /// The mapping script.
        #[arg(long, short = 'm')]
        mapping: PathBuf,
        /// A MaxMind database, for scripts that use ip2geo().
        #[arg(long)]
        geo: Option<PathBuf>,
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

/// Resolves a validated configuration and compiles its mappings, as
/// startup would before it starts anything.
fn resolve_and_compile(config: &divolte::config::Config) -> Result<divolte::plan::Plan, String> {
    let plan = divolte::plan::Plan::resolve(config)?;
    divolte::mapping::configured::build(&plan.mappings, plan.enrichment.ip2geo_database.is_some())?;
    Ok(plan)
}

/// Loads a configuration and compiles its mappings, as startup would.
fn check_config(file: &std::path::Path, connect: bool) -> ExitCode {
    let config = match divolte::config::load(Some(file)) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{}: {errors}", file.display());
            return ExitCode::FAILURE;
        }
    };
    let plan = match resolve_and_compile(&config) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    };
    if connect {
        let problems = divolte::sink::check_connections(&plan.sinks);
        if !problems.is_empty() {
            eprintln!("{}: {} sink(s) cannot be reached:", file.display(), problems.len());
            for p in problems {
                eprintln!("  - {p}");
            }
            return ExitCode::FAILURE;
        }
        println!("{}: configuration is valid; every sink's store or broker answers.", file.display());
    } else {
        println!("{}: configuration is valid.", file.display());
    }
    ExitCode::SUCCESS
}

/// Prints `file` (HOCON) as TOML, then checks the TOML as `check-config` would.
fn import_config(file: &std::path::Path) -> ExitCode {
    let origin = file.display().to_string();
    let converted = std::fs::read_to_string(file)
        .map_err(|e| format!("{origin}: cannot read: {e}"))
        .and_then(|text| divolte::config::read_hocon(file, &text).map_err(|e| format!("{origin}: {e}")))
        .and_then(|c| c.to_toml(&origin).map_err(|e| format!("{origin}: cannot write TOML: {e}")));
    let toml = match converted {
        Ok(t) => t,
        Err(e) => {
            eprint!("{e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{toml}");
    let checked = divolte::config::from_toml_with_env(&toml, |name| std::env::var(name).ok())
        .map_err(|e| e.to_string())
        .and_then(|config| resolve_and_compile(&config).map(drop).map_err(|e| format!("{e}\n")));
    match checked {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprint!("the translated configuration does not check: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match &cli.command {
        Some(Command::CheckConfig { file, connect }) => return check_config(file, *connect),
        Some(Command::ImportConfig { file }) => return import_config(file),
        Some(Command::MappingTest { schema, mapping, geo }) => {
            let stdin = std::io::stdin().lock();
            return match divolte::mapping::tool::run(schema, mapping, geo.as_deref(), stdin, std::io::stdout().lock()) {
                Ok(0) => ExitCode::SUCCESS,
                Ok(_) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            };
        }
        None => {}
    }
    let config = match divolte::config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::FAILURE;
        }
    };
    match divolte::startup::run(config, cli.config.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "Collector failed.");
            ExitCode::FAILURE
        }
    }
}
