#!/usr/bin/env bash
# Build the fuzz targets with libFuzzer's coverage instrumentation (what `cargo fuzz build`
# does, without installing cargo-fuzz; stable rustc needs RUSTC_BOOTSTRAP=1 for the flags)
# and run them.
#   fuzz/run.sh build [--bin T…]      build every target (or those named)
#   fuzz/run.sh run TARGET [ARGS…]    run one target from fuzz/corpus/TARGET (libFuzzer ARGS)
#   fuzz/run.sh smoke SECONDS         run every target SECONDS from its corpus (CI)
set -euo pipefail
cd "$(dirname "$0")"
TARGETS="npy cli_values shape_grammar explain_values filter_kernel filter_image serve_json conv_diff"
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks \
${FUZZ_EXTRA_RUSTFLAGS:-}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# An explicit --target keeps the instrumentation out of build scripts and proc macros.
# Scratch files of the targets that write (filter_image), removed however the script ends.
shm=/dev/shm; [ -d "$shm" ] && [ -w "$shm" ] || shm="${TMPDIR:-/tmp}"
export CONVKIT_FUZZ_SCRATCH; CONVKIT_FUZZ_SCRATCH=$(mktemp -d "$shm/convkit-fuzz.XXXXXX")
trap 'rm -rf "$CONVKIT_FUZZ_SCRATCH"' EXIT
triple=$(rustc -vV | sed -n 's/^host: //p')
bin="$CARGO_TARGET_DIR/$triple/release"
build() { cargo build --release --target "$triple" "${@:---bins}"; }
case "${1:-}" in
  build) shift; build "$@" ;;
  run)
    t=$2; shift 2
    mkdir -p "corpus/$t" "artifacts/$t"
    "$bin/$t" -artifact_prefix="artifacts/$t/" -rss_limit_mb=2048 -timeout=10 "$@" "corpus/$t" ;;
  smoke)
    secs=${2:-5}
    build
    for t in $TARGETS; do
      mkdir -p "corpus/$t" "artifacts/$t"
      "$bin/$t" -artifact_prefix="artifacts/$t/" -rss_limit_mb=2048 -timeout=10 -max_total_time="$secs" \
        -print_final_stats=1 "corpus/$t" 2>"$CARGO_TARGET_DIR/fuzz-$t.log" \
        || { tail -40 "$CARGO_TARGET_DIR/fuzz-$t.log"; echo "fuzz: $t failed" >&2; exit 1; }
      echo "fuzz: $t $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$CARGO_TARGET_DIR/fuzz-$t.log" | awk '{print $2}') executions in ${secs}s, no crash"
    done ;;
  *) echo "usage: fuzz/run.sh build | run TARGET [ARGS…] | smoke SECONDS" >&2; exit 2 ;;
esac
