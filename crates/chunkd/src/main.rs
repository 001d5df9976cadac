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

/// The default. glibc's allocator spent a fifth of a HEAD's CPU time in malloc and its
/// arena locks; jemalloc, with small thread caches and dirty pages returned after half a
/// second (.cargo/config.toml), answers HEADs about 1.8 times as fast at the same peak
/// memory. docs/decisions/0011-jemalloc.md has the measurements.
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Opt-in (`--features mimalloc`), measured for S3 bursts in docs/benchmarks.md.
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
