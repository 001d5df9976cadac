#!/usr/bin/env bash
# Fuzzes every parser of client input with AFL++ (cargo-afl, stable toolchain): each
# target in chunkd_http::fuzzing starts from its seeds in fuzz/corpus and runs for a
# number of executions; any crash (a panic, or a broken promise) or hang fails the run.
#
#   scripts/fuzz.sh [--execs N] [--out DIR] [--report FILE] [target...]
#
# --execs   executions per target (default 20000: the short run of the test command;
#           docs/fuzzing.md records a run of 10000000)
# --out     AFL++'s findings (default a temporary folder, removed unless something failed)
# --report  also write the table of results to FILE (markdown)
# Installs cargo-afl and builds AFL++ on first use (about two minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

execs=20000
out=
report=
targets=()
while (($#)); do
  case $1 in
    --execs) execs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(ls fuzz/corpus)
fi

cargo_afl_version=0.18.2
if ! cargo afl --version 2>/dev/null | grep -q "$cargo_afl_version"; then
  echo "== installing cargo-afl $cargo_afl_version"
  cargo install --locked --quiet cargo-afl --version "$cargo_afl_version"
fi
# Builds AFL++ for this rustc once; "already built" is the expected answer after that.
if ! config=$(cargo afl config --build 2>&1) && ! grep -q "already built" <<<"$config"; then
  echo "$config" >&2
  exit 1
fi

target_dir=${CARGO_TARGET_DIR:-$PWD/target}/afl
echo "== building the fuzz targets (instrumented)"
(cd fuzz && CARGO_TARGET_DIR=$target_dir cargo afl build --release --locked --quiet)
binary=$target_dir/release/chunkd-fuzz

keep=1
if [ -z "$out" ]; then
  out=$(mktemp -d -t chunkd-fuzz.XXXXXX)
  keep=0
fi
mkdir -p "$out"

# No screen, no CPU binding (the machine is shared), no core-dump handler to insist on.
export AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_FAST_CAL=1 \
  AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_QUIET=1

table="| target | executions | execs/s | paths found | coverage | crashes | hangs |
|---|---|---|---|---|---|---|"
failed=0
for target in "${targets[@]}"; do
  [ -d "fuzz/corpus/$target" ] || { echo "no corpus for target $target" >&2; exit 2; }
  rm -rf "${out:?}/$target"
  if ! cargo afl fuzz -i "fuzz/corpus/$target" -o "$out/$target" -E "$execs" \
    -- "$binary" "$target" >"$out/$target.log" 2>&1; then
    echo "afl-fuzz failed on $target:" >&2
    tail -20 "$out/$target.log" >&2
    exit 1
  fi
  stat() { awk -v k="$1" '$1 == k { print $3 }' "$out/$target/default/fuzzer_stats"; }
  crashes=$(stat saved_crashes)
  hangs=$(stat saved_hangs)
  row="| $target | $(stat execs_done) | $(stat execs_per_sec) | $(stat corpus_found) | $(stat bitmap_cvg) | $crashes | $hangs |"
  echo "$row"
  table+=$'\n'"$row"
  if [ "$crashes" != 0 ] || [ "$hangs" != 0 ]; then
    failed=1
    keep=1
    echo "  findings of $target: $out/$target/default/{crashes,hangs}" >&2
  fi
done

[ -z "$report" ] || printf '%s\n' "$table" >"$report"
((keep)) || rm -rf "$out"
if ((failed)); then
  echo "fuzz: crashes or hangs found (replay one: $binary <target> < file)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, $execs executions each, no crash, no hang"
