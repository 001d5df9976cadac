#!/usr/bin/env bash
# The Python package's benchmark (bench/python.py): chunkd's wheel under gunicorn and
# uvicorn against the binary and tussi. Installs what it needs under $BENCH_HOME once
# (the wheel anew each run). Results: bench/results/python-<time>.md.
#   bench/run-python.sh [--runs N] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/install.sh

build_chunkd
venv="$BENCH_HOME/python"
[ -x "$venv/bin/maturin" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q -r tests/e2e/python-build.txt; }
rm -rf "$target_dir/bench-wheels"
"$venv/bin/maturin" build --release --locked -o "$target_dir/bench-wheels"
"$venv/bin/pip" install -q --force-reinstall --no-deps "$target_dir"/bench-wheels/chunkd-*.whl
"$venv/bin/pip" install -q gunicorn==23.0.0 uvicorn==0.55.0 uvicorn-worker==0.4.0 starlette==1.10.0 tussi==3.1.0

mkdir -p bench/results
out="bench/results/python-$(date -u +%Y%m%dT%H%M%SZ).md"
python3 bench/python.py --chunkd "$target_dir/release/chunkd" --venv "$venv" \
  --work "$BENCH_HOME/work-python" "$@" | tee "$out"
echo "results written to $out"
