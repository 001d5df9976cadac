#!/usr/bin/env bash
# Installs and starts chunkd, rustus and @tus/server, plus a discarding sink (the limit),
# and benchmarks them side by side in one run. Results: bench/results/<time>.md.
#   bench/run.sh [--runs N] [--quick]
# Peer servers are installed once under $BENCH_HOME (default ~/.cache/chunkd-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
BENCH_HOME=${BENCH_HOME:-$HOME/.cache/chunkd-bench}
mkdir -p "$BENCH_HOME"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

command -v wrk >/dev/null || { as_root apt-get update -q && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends wrk; }

if [ ! -x "$BENCH_HOME/rustus/bin/rustus" ]; then
  echo "== installing rustus 0.5.10 (takes minutes once)"
  cargo install rustus --version 0.5.10 --locked --root "$BENCH_HOME/rustus"
fi
if [ ! -d "$BENCH_HOME/tus-node/node_modules/@tus/file-store" ]; then
  echo "== installing @tus/server"
  mkdir -p "$BENCH_HOME/tus-node"
  (cd "$BENCH_HOME/tus-node" && { [ -f package.json ] || npm init -y >/dev/null; } \
    && npm install --no-audit --no-fund --loglevel=error @tus/server@2.4.5 @tus/file-store@2.1.1)
fi
cp bench/peers/tus-node-server.mjs "$BENCH_HOME/tus-node/server.mjs"

echo "== building chunkd and the sink"
cargo build --release --locked -p chunkd
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
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
