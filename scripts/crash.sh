#!/usr/bin/env bash
# Kills chunkd with SIGKILL at random moments while every protocol's client uploads,
# restarts it on the same data and checks that nothing acknowledged was lost (see
# tests/e2e/py/crash_harness.py). The long run behind docs/crash.md:
#
#   scripts/crash.sh [--kills N] [--report FILE] [backend...]
#
# --kills   kills per backend (default 100; the test command runs a few)
# --report  append each backend's tally to FILE (one JSON line per run)
# backends  fs, s3+postgres (default both). Builds the release binary, starts the test
# services and installs the Python clients as the test command does.
set -euo pipefail
cd "$(dirname "$0")/.."

kills=100
report=
backends=()
while (($#)); do
  case $1 in
    --kills) kills=$2; shift 2 ;;
    --report) report=$(realpath "$2"); shift 2 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) backends+=("$1"); shift ;;
  esac
done
((${#backends[@]})) || backends=(fs s3+postgres)

cargo build --release --locked -p chunkd
export CHUNKD_BIN=${CARGO_TARGET_DIR:-$PWD/target}/release/chunkd
eval "$(scripts/services.sh start)"
[ -x tests/e2e/.venv/bin/python ] || python3 -m venv tests/e2e/.venv
tests/e2e/.venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt

for backend in "${backends[@]}"; do
  (cd tests/e2e/py && ../.venv/bin/python crash_harness.py --kills "$kills" \
    --backend "$backend" ${report:+--report "$report"})
done
