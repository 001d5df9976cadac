//! chunkd: resumable, chunked HTTP uploads.

mod assemble;
mod cli;
mod config;
mod serve;
mod shutdown;
mod telemetry;

use clap::Parser;

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let config = config::Config::load(&cli)?;
    telemetry::init(&config.log)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(cli::run(cli, config))
}
