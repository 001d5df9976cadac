//! chunkd: resumable, chunked HTTP uploads.

mod assemble;
mod check;
mod cli;
mod config;
mod listeners;
mod metrics;
mod serve;
mod shutdown;
mod telemetry;
mod upload;

use std::process::ExitCode;

use clap::Parser;

/// Opt-in (`--features mimalloc`). After a burst of S3 uploads, each holding a part in
/// memory, glibc's allocator keeps hundreds of MiB that mimalloc gives back; on disk
/// workloads mimalloc holds more than glibc. docs/benchmarks.md has both measurements.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    let cli = cli::Cli::parse();
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
