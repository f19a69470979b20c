#!/usr/bin/env bash
# Every comparison in one go, and one report with charts:
#
#   scripts/bench.sh            # under 15 minutes, after the release build
#   scripts/bench.sh --quick    # under 3 minutes, after the release build; rougher
#
# Builds everything in release first. That build is not counted in either
# bound: from a cold target directory it alone takes minutes; with the
# binaries already built it takes a second or two. Both times are printed
# at the end. Then it runs, each server pinned to CPU 0 and the load to
# CPU 1 (the compare scripts do the pinning):
#
#   scripts/echo-compare.sh   echo: edgechat, tokio, mio, the blocking floor
#   scripts/chat-compare.sh   chat fan-out: edgechat, the tokio peer, Redis,
#                             NATS, and the raw epoll floor as a reference;
#                             counts per delivery, idle clients
#   scripts/tls-compare.sh    echo over TLS (when the script is there)
#
# passing --quick through, and finally `examples/bench_report.rs`, which
# writes target/bench/report.md (each table, the machine: nproc, CPU model,
# kernel, load average) and the SVG charts target/bench/*.svg.
#
# Every timed figure is the median of ROUNDS interleaved rounds (ours and
# each peer in turn, a fresh server each time): 3 by default, 1 with
# --quick. The syscall and instruction counts are two-point differences
# over exact counts (scripts/lib.sh two_point), once per server.
#
# Chat fan-out needs Redis and NATS: Debian's `redis-server` and
# `nats-server`, which scripts/chat-compare.sh installs with `apt-get
# install -y` when they are missing, and an `edgechat bench` with `--proto`.
# If either cannot be had, the chat part fails and says why (the report
# names it); CHAT_SERVERS="edgechat tokio floor" runs chat without them.
#
# Each part runs under a time budget taken from what is left of the whole
# (870 s, or 175 s with --quick; the build before it is not counted); a
# part cut short by it is named in the report and the rest goes on (the TLS
# charts then come from the runs it finished). Defaults chosen to fit:
#
#   echo   ROUNDS=3 SECS=2 IDLE=5000 N=20000 ST_N=5000
#   chat   ROUNDS=3 SECS=1 WARMUP=0.3 CG_N=1000 IDLE=5000 (8 loads x 5 servers)
#   tls    ROUNDS=3 SECS=2 N=3000 ST_N=100 HS_N=20 IDLE=1000
#
# The parts may take at most 205, 460 and 195 s each before they are cut;
# chat's fan-out alone is 120 runs (2 receiver counts x 4 depths x 5
# servers x 3 rounds), each a fresh server, 1001 clients connecting, 0.3 s
# of warm-up and 1 s measured. Chat's counts need
# about 1000 lines: the join storm of connecting 101 clients costs the
# server a varying few million instructions, which 300 lines left at up to
# a third of the figure.
#
# and with --quick: 1 round of 1 s per load, not 3 (no medians); syscall
# and instruction counts for edgechat and its first peer only, on fewer
# loads, at small counts, with the syscall total alone (TP_NAMED=), and for
# TLS two servers at once, unpinned (COUNT_JOBS=2: the figures of a
# pipelined load or of chat fan-out move too much that way, TLS pingpong
# and handshakes hardly); the cells not counted show "–":
#
#   echo   IDLE=1000; counts: pingpong (N=5000), edgechat and tokio
#   chat   fan-out only, D = 1 and 256 (its counts need 1000 lines, see above)
#   tls    IDLE=300; counts: pingpong (N=1000) and full handshakes (HS_N=5)
#
# Set ROUNDS, SECS, IDLE, N, ST_N, HS_N, CG_N, PARTS, TOP, CHAT_SERVERS or
# BUDGET in the environment to change them (N, ST_N: pingpong and stream
# messages counted, for echo and TLS alike; HS_N: TLS handshakes; CG_N: chat
# lines; CHAT_SERVERS: the chat servers, "edgechat tokio redis nats floor").
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REL=${CARGO_TARGET_DIR:-target}
[[ $REL == /* ]] || REL=$ROOT/$REL # as scripts/lib.sh: cargo runs in $ROOT
REL=$REL/release
OUT=$ROOT/target/bench

# shellcheck source=scripts/quick.sh
source "$(dirname "${BASH_SOURCE[0]}")/quick.sh"
parse_quick "$@"
if ((QUICK)); then
    BUDGET=${BUDGET:-175}
    BOUND=180
else
    BUDGET=${BUDGET:-870}
    BOUND=900
fi

for tool in taskset timeout; do
    command -v "$tool" >/dev/null || {
        echo "$tool not found (apt-get install coreutils util-linux)" >&2
        exit 1
    }
done
if (($(nproc) < 2)); then
    echo "needs two CPUs (servers on CPU 0, load on CPU 1)" >&2
    exit 1
fi

PART=
cleanup() {
    if [[ -n $PART ]] && kill -0 "$PART" 2>/dev/null; then
        kill -TERM "$PART" 2>/dev/null || true
        wait "$PART" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
B0=$SECONDS
echo "building (release, examples and binaries)..." >&2
(cd "$ROOT" && cargo build --release --examples --bins --quiet)
BUILT=$((SECONDS - B0))
export BENCH_BUILT=1 # the parts need not ask cargo again
# The time budget counts from here: a first build can take minutes.
T0=$SECONDS
: >"$OUT/bench-parts.tsv"

# part NAME CAP CMD...: runs CMD under `timeout`, at most CAP seconds and no
# longer than what is left of BUDGET; its stdout goes to the terminal.
# `timeout` signals the part's whole process group, servers included, and
# the part's own EXIT trap stops what it started.
part() {
    local name=$1 cap=$2 left start rc=0
    shift 2
    left=$((BUDGET - (SECONDS - T0) - 5))
    ((left < cap)) && cap=$left
    if ((cap < 10)); then
        echo "== $name: skipped, no time left" >&2
        printf '%s\tskipped\t0\n' "$name" >>"$OUT/bench-parts.tsv"
        return 0
    fi
    echo "== $name (at most $cap s)" >&2
    start=$SECONDS
    timeout -s TERM -k 15 "$cap" "$@" &
    PART=$!
    wait "$PART" || rc=$?
    PART=
    local status=ok
    ((rc == 124 || rc == 137)) && status="cut at $cap s"
    ((rc != 0 && rc != 124 && rc != 137)) && status="failed ($rc)"
    echo "== $name: $status, $((SECONDS - start)) s" >&2
    printf '%s\t%s\t%s\n' "$name" "$status" "$((SECONDS - start))" >>"$OUT/bench-parts.tsv"
}

# Echo: writes target/bench/echo-compare.md and echo-compare/runs.tsv itself.
rm -f "$OUT/echo-compare.md"
if ((QUICK)); then
    IDLE=${IDLE:-1000} N=${N:-5000} ST_N=${ST_N:-0} COUNT_SERVERS="edgechat tokio" \
        TP_NAMED='' part echo 43 "$ROOT/scripts/echo-compare.sh" --quick >/dev/null
else
    ROUNDS=${ROUNDS:-3} SECS=${SECS:-2} IDLE=${IDLE:-5000} N=${N:-20000} ST_N=${ST_N:-5000} \
        part echo 205 "$ROOT/scripts/echo-compare.sh" >/dev/null
fi

# Chat: prints its tables; its raw runs go next to them.
rm -rf "$OUT/chat-compare.md" "$OUT/chat-compare"
mkdir -p "$OUT/chat-compare"
if ((QUICK)); then
    PARTS=${PARTS:-fan} \
        part chat 80 "$ROOT/scripts/chat-compare.sh" --quick >"$OUT/chat-compare.md"
else
    ROUNDS=${ROUNDS:-3} SECS=${SECS:-1} WARMUP=${WARMUP:-0.3} CG_N=${CG_N:-1000} IDLE=${IDLE:-5000} \
        part chat 460 "$ROOT/scripts/chat-compare.sh" >"$OUT/chat-compare.md"
fi
if [[ -s $ROOT/target/measure/chat-compare/runs.txt ]]; then
    cp "$ROOT/target/measure/chat-compare/runs.txt" "$OUT/chat-compare/runs.txt"
fi
[[ -s $OUT/chat-compare.md ]] || rm -f "$OUT/chat-compare.md"

# TLS: writes target/bench/tls-compare.md and tls-compare.tsv itself.
if [[ -f $ROOT/scripts/tls-compare.sh ]]; then
    rm -rf "$OUT/tls-compare.md" "$OUT/tls-compare.tsv" "$OUT/tls-compare"
    if ((QUICK)); then
        N=${N:-1000} IDLE=${IDLE:-300} TOP=${TOP:-0} TP_NAMED='' COUNT_JOBS=2 \
            CG_LOADS="pp50 hsfull" SYS_LOADS="pp50 hsfull" \
            part tls 40 bash "$ROOT/scripts/tls-compare.sh" --quick >/dev/null
    else
        ROUNDS=${ROUNDS:-3} SECS=${SECS:-2} N=${N:-3000} ST_N=${ST_N:-100} HS_N=${HS_N:-20} \
            IDLE=${IDLE:-1000} TOP=${TOP:-0} \
            part tls 195 bash "$ROOT/scripts/tls-compare.sh" >/dev/null
    fi
else
    echo "== tls: scripts/tls-compare.sh not there, skipped" >&2
    printf 'tls\tnot there\t0\n' >>"$OUT/bench-parts.tsv"
fi

TOOK=$((SECONDS - T0))
MODE=full
((QUICK)) && MODE=quick
"$REL/examples/bench_report" --dir "$OUT" --load-start "$LOAD_START" --secs "$TOOK" \
    --build-secs "$BUILT" --mode "$MODE" --bound "$BOUND" \
    --commit "$(cd "$ROOT" && git rev-parse --short HEAD)"
{
    echo "## Parts"
    echo
    echo "| part | status | seconds |"
    echo "|---|---|---:|"
    while IFS=$'\t' read -r name status secs; do
        echo "| $name | $status | $secs |"
    done <"$OUT/bench-parts.tsv"
} >>"$OUT/report.md"
echo "report: ${OUT#"$ROOT"/}/report.md" >&2
echo "release build: $BUILT s (not in the bound); measurements and report: $((SECONDS - T0)) s" \
    "(bound: $BOUND s, budget $BUDGET s)" >&2
