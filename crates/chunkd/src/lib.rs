//! chunkd: resumable, chunked HTTP uploads. The binary is [`main`]; the parts are public
//! for programs that run the engine inside themselves (the Python package does).

pub mod assemble;
mod check;
pub mod cli;
pub mod config;
pub mod embed;
mod listeners;
mod metrics;
mod serve;
mod shutdown;
mod telemetry;
mod upload;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// The command line `args` (the program's name first) run to the end, as the binary
/// runs it: reads the configuration, installs the log subscriber and signal handlers.
pub fn main(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> anyhow::Result<ExitCode> {
    let cli = cli::Cli::parse_from(args);
    if let Some(done) = cli::run_without_config(&cli.command) {
        return done;
    }
    let config = config::Config::load(&cli)?;
    telemetry::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(cli::run(cli, config))
}
