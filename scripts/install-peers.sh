#!/usr/bin/env bash
# Installs the peer tus servers once under $BENCH_HOME (default ~/.cache/chunkd-bench):
# rustus 0.5.10 and @tus/server with @tus/file-store (with its start script), plus tmux
# for the terminal tests of `chunkd upload`. Used by bench/run.sh and scripts/test-all.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/install.sh

if ! command -v tmux >/dev/null; then
  echo "== installing tmux"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends tmux
fi
if [ ! -x "$BENCH_HOME/rustus/bin/rustus" ]; then
  echo "== installing rustus 0.5.10 (takes minutes once)"
  cargo install rustus --version 0.5.10 --locked --root "$BENCH_HOME/rustus"
fi
[ -d "$BENCH_HOME/tus-node/node_modules/@tus/file-store" ] || install_node_peer @tus/server@2.4.5 @tus/file-store@2.1.1
cp bench/peers/tus-node-server.mjs "$BENCH_HOME/tus-node/server.mjs"
