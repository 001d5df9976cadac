#!/usr/bin/env bash
# Runs every test of chunkd: formatting and lints, the unit, property, conformance and wire
# tests (cargo test, including those against PostgreSQL and an S3 service, which it
# starts), a short fuzzing run, then end-to-end tests of the release binary with the real client libraries
# (tus-js-client under Node, tuspy, requests and boto3 under Python) and of the Python package (its wheel,
# built with maturin, under gunicorn). Installs what a
# fresh Debian machine lacks; needs a Rust toolchain (rustup) and root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp -t chunkd-tests.XXXXXX)
trap 'rm -f "$log"; scripts/services.sh stop >/dev/null 2>&1 || true' EXIT

have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=()
have node || packages+=(nodejs)
have npm || packages+=(npm)
have python3 || packages+=(python3)
# A C compiler and make: SQLite and jemalloc are built from source.
{ have cc && have make; } || packages+=(build-essential)
have curl || packages+=(curl)
have openssl || packages+=(openssl)
have systemd-analyze || packages+=(systemd)
# The upload page's tests drive Debian's browser (playwright-core downloads none).
have chromium || packages+=(chromium)
if have python3 && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then packages+=(python3-venv); fi
if ((${#packages[@]})); then
  echo "== installing ${packages[*]}"
  as_root apt-get update -q
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${packages[@]}"
fi
have cargo || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }

target_dir=${CARGO_TARGET_DIR:-$PWD/target}

echo "== cargo fmt, clippy, doc"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked -q

echo "== services: PostgreSQL, S3 (s3s-fs)"
eval "$(scripts/services.sh start)"

echo "== cargo test (with the tests that need the services)"
cargo test --workspace --locked -- --include-ignored 2>&1 | tee -a "$log"

echo "== fuzzing: a short AFL++ run of every parser of client input (docs/fuzzing.md)"
scripts/fuzz.sh

echo "== release build for the end-to-end tests"
cargo build --release --locked -p chunkd
export CHUNKD_BIN=$target_dir/release/chunkd

echo "== the Python package: a wheel (maturin), installed with gunicorn into a fresh venv"
# maturin builds into the same target directory, so the engine's crates are shared.
[ -x "$target_dir/py-build/bin/maturin" ] || {
  python3 -m venv "$target_dir/py-build"
  "$target_dir/py-build/bin/pip" install -q --disable-pip-version-check -r tests/e2e/python-build.txt
}
rm -rf "$target_dir/wheels" "$target_dir/wheel-venv"
"$target_dir/py-build/bin/maturin" build --release --locked -o "$target_dir/wheels"
python3 -m venv "$target_dir/wheel-venv"
"$target_dir/wheel-venv/bin/pip" install -q --disable-pip-version-check "$target_dir"/wheels/chunkd-*.whl \
  -r tests/e2e/wheel-requirements.txt
export CHUNKD_WHEEL_VENV=$target_dir/wheel-venv
# The source distribution builds with a Rust toolchain only if it carries the workspace.
"$target_dir/py-build/bin/maturin" sdist -o "$target_dir/wheels"
listing=$(tar tzf "$target_dir"/wheels/chunkd-*.tar.gz)
for member in Cargo.lock pyproject.toml crates/chunkd-core/Cargo.toml crates/chunkd-py/src/lib.rs \
  crates/chunkd-http/ui/vendor/uppy.js.gz python/chunkd/wsgi.py python/chunkd/django/views.py; do
  grep -qE "^chunkd-[^/]+/$member\$" <<<"$listing" || { echo "the sdist lacks $member" >&2; exit 1; }
done

echo "== client libraries"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
[ -x tests/e2e/.venv/bin/python ] || python3 -m venv tests/e2e/.venv
tests/e2e/.venv/bin/pip install -q --disable-pip-version-check -r tests/e2e/requirements.txt

echo "== peer tus servers (rustus, @tus/server) and tmux for chunkd upload"
scripts/install-peers.sh

echo "== end-to-end: Node clients (tus-js-client, Resumable.js, Flow.js, blueimp) and the upload page in chromium"
(cd tests/e2e && node --test --test-concurrency=1 js/) 2>&1 | tee -a "$log"

echo "== end-to-end on S3 + PostgreSQL: tus-js-client, IETF draft"
(cd tests/e2e && CHUNKD_E2E_BACKEND=s3+postgres node --test --test-concurrency=1 \
  js/tus-js-client.test.mjs js/ietf-draft.test.mjs) 2>&1 | tee -a "$log"

echo "== end-to-end: Python clients (tuspy, requests, raw sockets, boto3; three instances on S3 + PostgreSQL; kill -9 crash runs; the wheel under gunicorn)"
(cd tests/e2e/py && ../.venv/bin/python -m pytest -q -p no:cacheprovider) 2>&1 | tee -a "$log"

# One line over every runner above (each already failed the script on its own failures).
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
  /^# pass /      { p += $3 }
  /^# fail /      { f += $3 }
  /^[0-9]+ passed/ { p += $1 }
  / [0-9]+ failed/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/ && $i ~ /^[0-9]+$/ && $0 !~ /^test result/) f += $i }
  END { printf "total: %d passed, %d failed\n", p, f }
' "$log"
