#!/usr/bin/env bash
# Installs and starts chunkd, rustus and @tus/server, plus a discarding sink (the limit),
# and benchmarks them side by side in one run. Results: bench/results/<time>.md.
#   bench/run.sh [--runs N] [--quick]
# Peer servers are installed once under $BENCH_HOME (default ~/.cache/chunkd-bench).
# The S3 benchmark is bench/run-s3.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/install.sh

command -v wrk >/dev/null || { as_root apt-get update -q && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends wrk; }

scripts/install-peers.sh

build_chunkd
CARGO_TARGET_DIR="$target_dir/bench-sink" cargo build --release --manifest-path bench/sink/Cargo.toml

mkdir -p bench/results
out="bench/results/$(date -u +%Y%m%dT%H%M%SZ).md"
python3 bench/bench.py \
  --chunkd "$target_dir/release/chunkd" \
  --rustus "$BENCH_HOME/rustus/bin/rustus" \
  --tus-node "$BENCH_HOME/tus-node/server.mjs" \
  --sink "$target_dir/bench-sink/release/chunkd-bench-sink" \
  --work "$BENCH_HOME/work" "$@" | tee "$out"
echo "results written to $out"
