#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer): runs each target in fuzz/ for
# SECONDS (default 300), starting from its committed seeds (fuzz/seeds/T)
# and from what earlier runs kept (fuzz/corpus/T), and fails if any
# target crashes. What each target checks: README.md, "Fuzzing".
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      TARGET: framer chat tls (default: all)
#
# cargo-fuzz passes nightly-only flags (-Z sanitizer, sancov); on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets them through. Builds are optimized with
# debug assertions and overflow checks on (-a), and AddressSanitizer on
# (cargo-fuzz's default; it watches the unsafe syscall wrappers in src/sys/
# that the tls target goes through). FUZZ_SANITIZER=none runs without it,
# about 3 times faster for tls. The tls target runs with -detect_leaks=0:
# handshakes leave state behind by design (the server's session cache), so
# libFuzzer ran LeakSanitizer after most inputs, 6 times slower (~70
# against ~430 inputs/s here).
#
# A crash leaves its input in fuzz/artifacts/T/ (and the log's tail on
# stderr); replay it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -a T fuzz/artifacts/T/crash-...
# or, without cargo-fuzz, by adding it to fuzz/seeds/T/ and running
#   cargo test --manifest-path fuzz/Cargo.toml --lib
set -euo pipefail
cd "$(dirname "$0")/.."

all=(framer chat tls)
secs=${1:-300}
if ! [[ $secs =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: SECONDS must be a positive whole number, not '$secs'" >&2
    exit 2
fi
shift $(($# > 0 ? 1 : 0))
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")
for t in "${targets[@]}"; do
    if [[ " ${all[*]} " != *" $t "* ]]; then
        echo "fuzz.sh: no target '$t' (targets: ${all[*]})" >&2
        exit 2
    fi
done

# Pinned, and --locked, so a fresh machine builds the same cargo-fuzz;
# --debug because it is a thin driver: it builds in half the time.
CARGO_FUZZ_VERSION=0.13.2
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --locked --debug --version "$CARGO_FUZZ_VERSION"
fi
export RUSTC_BOOTSTRAP=1

# FUZZ_TARGET_DIR: where the fuzz build goes (default fuzz/target). A
# directory kept between checkouts (.ci/run uses one) saves rebuilding
# the dependencies, most of the build.
build=(-a --sanitizer "${FUZZ_SANITIZER:-address}" --target-dir "${FUZZ_TARGET_DIR:-fuzz/target}")
# One build for every target (each `cargo fuzz run` then finds it built).
cargo fuzz build "${build[@]}"

failed=()
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log="fuzz/artifacts/$t.log" # not in $t/: cargo-fuzz lists that as crashes
    args=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
    [ ! -f "fuzz/dicts/$t.dict" ] || args+=(-dict="fuzz/dicts/$t.dict")
    [ "$t" != tls ] || args+=(-detect_leaks=0)
    echo "== fuzz $t for ${secs}s"
    if cargo fuzz run "${build[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- "${args[@]}" >"$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
    else
        failed+=("$t")
        tail -n 60 "$log" >&2
    fi
done

echo "corpus: fuzz/corpus/<target>/; crashes: fuzz/artifacts/<target>/; logs: fuzz/artifacts/<target>.log"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz.sh: ${targets[*]}: no crash in ${secs}s each"
