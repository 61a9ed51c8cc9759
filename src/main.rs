//! The `trustmail` command: logging, the command line and the configuration, then the library.

use std::process::ExitCode;

use clap::Parser;
use trustmail::{
    cli::{self, Cli},
    config::Config,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal; they cost time and garble log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Config::load(cli.config.as_deref()) {
        Ok(config) => cli::run(cli.command, config),
        Err(e) => {
            eprintln!("trustmail: {e}");
            ExitCode::from(cli::EXIT_CONFIG)
        }
    }
}
