//! chunkd: resumable, chunked HTTP uploads.

use std::process::ExitCode;

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
    chunkd::main(std::env::args_os())
}
