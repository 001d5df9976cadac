# Sourced by the bench scripts: installs the peers once under $BENCH_HOME and builds
# chunkd. Sets target_dir.
BENCH_HOME=${BENCH_HOME:-$HOME/.cache/chunkd-bench}
mkdir -p "$BENCH_HOME"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
target_dir=${CARGO_TARGET_DIR:-$PWD/target}

# npm packages into $BENCH_HOME/tus-node, once: install_node_peer <package@version>...
install_node_peer() {
  mkdir -p "$BENCH_HOME/tus-node"
  (cd "$BENCH_HOME/tus-node" && { [ -f package.json ] || npm init -y >/dev/null; } \
    && npm install --no-audit --no-fund --loglevel=error "$@")
}

build_chunkd() {
  echo "== building chunkd"
  cargo build --release --locked -p chunkd
}
