#!/usr/bin/env bash
# chunkd on S3 against @tus/server with @tus/s3-store and boto3's own multipart upload,
# all on one s3s-fs server, in one run. Results: bench/results/s3-<time>.md.
#   bench/run-s3.sh [--runs N] [--quick]
# Peers are installed once under $BENCH_HOME (default ~/.cache/chunkd-bench); s3s-fs is
# the one the tests build (scripts/services.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/install.sh

s3s_fs=$(scripts/services.sh s3s-fs-path)
[ -d "$BENCH_HOME/tus-node/node_modules/@tus/s3-store" ] || install_node_peer @tus/server@2.4.5 @tus/s3-store@2.0.7
cp bench/peers/tus-node-s3-server.mjs "$BENCH_HOME/tus-node/server-s3.mjs"
if [ ! -x "$BENCH_HOME/venv/bin/python" ]; then
  python3 -m venv "$BENCH_HOME/venv"
  "$BENCH_HOME/venv/bin/pip" install -q boto3==1.35.99
fi

build_chunkd
# The same chunkd on mimalloc (an opt-in feature), to show what the allocator changes.
echo "== building chunkd with mimalloc"
CARGO_TARGET_DIR="$target_dir/bench-mimalloc" cargo build --release --locked -p chunkd --features mimalloc

mkdir -p bench/results
out="bench/results/s3-$(date -u +%Y%m%dT%H%M%SZ).md"
"$BENCH_HOME/venv/bin/python" bench/s3.py \
  --chunkd "$target_dir/release/chunkd" \
  --chunkd-mimalloc "$target_dir/bench-mimalloc/release/chunkd" \
  --tus-node-s3 "$BENCH_HOME/tus-node/server-s3.mjs" \
  --s3s-fs "$s3s_fs" \
  --work "$BENCH_HOME/work-s3" "$@" | tee "$out"
echo "results written to $out"
