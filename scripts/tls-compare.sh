#!/usr/bin/env bash
# TLS echo, side by side: edgechat (`serve --mode echo --tls`) against the
# tokio-rustls peer (examples/peer_tokio_rustls_echo.rs: current_thread
# runtime, same certificate, same provider, tickets on), with the figures
# and goals of issue 4's "Speed" section.
#
#   scripts/tls-compare.sh            # 3 rounds x 4 s per load, ~4 minutes
#   scripts/tls-compare.sh --quick    # 1 round x 1 s, smaller counts, ~1 minute
#
# Release builds, 127.0.0.1 only. Each server starts on a free port pinned
# to CPU 0 (`taskset -c 0`); the load, `edgechat bench --tls --server-pid
# PID --json`, runs pinned to CPU 1. The servers take turns (ours, peer,
# ours, ...), each round on a fresh server process, and every figure is the
# median over the rounds. Per server and round:
#
#   pingpong 64 B x 50 conns          msgs/s, server CPU us/msg
#   stream 16 KiB x 1 (depth 4)       MB/s, server CPU us/MB
#   handshake, full (HSCONNS at once) handshakes/s, server CPU us/handshake
#   handshake, resumed (--resume)     the same, and how many were resumed
#
# Then, once per server: user-space instructions per message under
# callgrind for TLS pingpong 64 B x 50, (Ir(2N) - Ir(N)) / N with exactly N
# and 2N messages (`bench --count`), so start-up and the 50 handshakes
# cancel out; and server RSS per idle TLS connection with IDLE (2000)
# connections open, handshakes done (`bench --mode idle --tls`).
#
# Writes the markdown table and the goals to target/bench/tls-compare.md,
# the same figures as `figure<TAB>ours<TAB>peer` lines to
# target/bench/tls-compare.tsv, raw figures to target/bench/tls-compare/.
# The machine may be shared: the load average goes under the table, and a
# row gives the share of each run the server spent runnable but waiting for
# CPU 0 (/proc/PID/task/*/schedstat), as in echo-compare.sh.
#
# Environment: ROUNDS, SECS, WARMUP, N (callgrind; 10000, or 2000 with
# --quick), IDLE (idle connections, 2000), HSCONNS (connections handshaking
# at once, 8), TOP (ours' callgrind self cost by function, 25; 0 skips).
set -euo pipefail
CG_N=${N:-} # lib.sh sets its own default N
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/quick.sh
source "$(dirname "${BASH_SOURCE[0]}")/quick.sh"
parse_quick "$@"
if ((QUICK)); then
    ROUNDS=${ROUNDS:-1} SECS=${SECS:-1} WARMUP=${WARMUP:-0.2} N=${CG_N:-2000}
else
    ROUNDS=${ROUNDS:-3} SECS=${SECS:-4} WARMUP=${WARMUP:-0.5} N=${CG_N:-10000}
fi
IDLE=${IDLE:-2000}
HSCONNS=${HSCONNS:-8}
TOP=${TOP:-25}
# shellcheck disable=SC2034  # read by start_server in lib.sh
SCHEME=tls
NAMES=(ours peer)
CERT=$ROOT/certs/server.crt
KEY=$ROOT/certs/server.key
CA=$ROOT/certs/ca.crt

for tool in taskset python3 valgrind callgrind_annotate; do
    command -v "$tool" >/dev/null || {
        echo "$tool not found" >&2
        exit 1
    }
done
if (($(nproc) < 2)); then
    echo "needs two CPUs (server on CPU 0, load on CPU 1)" >&2
    exit 1
fi
# The peer does not raise its own descriptor limit; IDLE connections need it.
ulimit -n "$(ulimit -Hn)"

OUT=$ROOT/target/bench/tls-compare
MD=$ROOT/target/bench/tls-compare.md
TSV=$ROOT/target/bench/tls-compare.tsv
mkdir -p "$OUT"
RUNS=$OUT/runs.tsv
: >"$RUNS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS

echo "building (release)..." >&2
build

# tls_argv NAME: sets SERVER_ARGV to TLS echo server NAME on a free port.
tls_argv() {
    case $1 in
        ours) SERVER_ARGV=("$REL/edgechat" serve --mode echo --tls 127.0.0.1:0 --cert "$CERT" --key "$KEY") ;;
        peer) SERVER_ARGV=("$REL/examples/peer_tokio_rustls_echo" 127.0.0.1:0 "$CERT" "$KEY") ;;
        *) return 1 ;;
    esac
}

# pinned NAME: starts server NAME on CPU 0 (sets SERVER_PID and ADDR).
pinned() {
    tls_argv "$1"
    start_server "$OUT/$1.log" "$OUT/$1.pid" \
        taskset -c 0 "${PIDWRAP[@]}" "$OUT/$1.pid" "${SERVER_ARGV[@]}"
}

# tls_bench ARGS...: `edgechat bench --tls` against ADDR on CPU 1, bounded.
tls_bench() {
    timeout --foreground 180 taskset -c 1 "$REL/edgechat" bench --tls --ca "$CA" --addr "$ADDR" "$@"
}

# ticks PID: user and system CPU time of the process so far, in clock ticks
# (/proc/PID/stat fields 14 and 15; the command name may hold spaces).
ticks() {
    sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'
}

# bench NAME ROUND LOAD FLAGS...: one measured window, appended to $RUNS
# with the share of the run the server spent waiting for its CPU, and the
# user-space share of the server's CPU time (the rest is the kernel's).
bench() {
    local name=$1 round=$2 load=$3 json="$OUT/$1.$2.$3.json" t0 w0 wait_pct u0 s0 u1 s1 user_pct
    shift 3
    read -r u0 s0 < <(ticks "$SERVER_PID")
    t0=$(date +%s%N)
    w0=$(runq_ns "$SERVER_PID")
    if ! tls_bench "$@" --secs "$SECS" --warmup "$WARMUP" --server-pid "$SERVER_PID" --json \
        >"$json" 2>"$OUT/$name.$round.$load.err"; then
        echo "warning: $name round $round $load: bench failed:" >&2
        cat "$OUT/$name.$round.$load.err" >&2
    fi
    wait_pct=$(awk -v w="$(($(runq_ns "$SERVER_PID") - w0))" -v t="$(($(date +%s%N) - t0))" \
        'BEGIN { printf "%.1f", 100 * w / t }')
    read -r u1 s1 < <(ticks "$SERVER_PID")
    user_pct=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) 'BEGIN { if (u + s > 0) printf "%.1f", 100 * u / (u + s); else print "nan" }')
    if [[ -s $json ]]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$load" "$wait_pct" "$user_pct" \
            "$(tail -n 1 "$json")" >>"$RUNS"
    fi
}

LOADS=(
    "pp50 --mode pingpong --conns 50 --size 64"
    "st1 --mode stream --conns 1 --size 16384 --depth 4"
    "hsfull --mode handshake --conns $HSCONNS --size 64"
    "hsres --mode handshake --resume --conns $HSCONNS --size 64"
)
rounds
LOAD_MID=$(cut -d' ' -f1-3 /proc/loadavg)

# ir NAME COUNT: total Ir of server NAME under callgrind carrying exactly
# COUNT TLS pingpong messages (64 B x 50 connections).
ir() {
    local name=$1 count=$2 file="$OUT/callgrind.$1.$2.out"
    tls_argv "$name"
    rm -f "$file"
    start_server "$OUT/callgrind.$name.$count.log" "$OUT/callgrind.$name.pid" \
        "${PIDWRAP[@]}" "$OUT/callgrind.$name.pid" \
        valgrind --tool=callgrind --callgrind-out-file="$file" "${SERVER_ARGV[@]}"
    if ! timeout --foreground 600 "$REL/edgechat" bench --tls --ca "$CA" --addr "$ADDR" \
        --mode pingpong --conns 50 --size 64 --count "$count" --json \
        >"$OUT/callgrind.$name.$count.json" 2>&1; then
        cat "$OUT/callgrind.$name.$count.json" >&2
        stop_server
        return 1
    fi
    stop_server
    awk '/^totals:/ { print $2; found = 1 } END { exit !found }' "$file"
}

# selfcost FILE: "Ir function" per entry of a callgrind output (self cost).
selfcost() {
    callgrind_annotate --inclusive=no --threshold=100 --auto=no "$1" 2>/dev/null |
        awk '
            /file:function$/ { header = 1; next }
            /^-+$/ { if (header) on = 1; next }
            on && $1 ~ /^[0-9,]+$/ {
                n = $1; gsub(",", "", n)
                key = $0; sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", key)
                sub(/ \[[^]]*\]$/, "", key); sub(/^.*:/, "", key)
                sum[key] += n
            }
            END { for (k in sum) print sum[k], k }'
}

echo "instructions per message under callgrind (N=$N and 2N)..." >&2
: >"$OUT/callgrind.tsv"
for name in "${NAMES[@]}"; do
    one=$(ir "$name" "$N") || one=
    two=$(ir "$name" $((2 * N))) || two=
    if [[ -n $one && -n $two ]]; then
        printf '%s\t%s\n' "$name" "$(awk -v a="$one" -v b="$two" -v n="$N" 'BEGIN { print (b - a) / n }')" \
            >>"$OUT/callgrind.tsv"
    fi
done
if ((TOP > 0)) && [[ -s $OUT/callgrind.ours.$N.out && -s $OUT/callgrind.ours.$((2 * N)).out ]]; then
    selfcost "$OUT/callgrind.ours.$N.out" >"$OUT/ours.$N.self"
    selfcost "$OUT/callgrind.ours.$((2 * N)).out" >"$OUT/ours.$((2 * N)).self"
    awk -v n="$N" '
        NR == FNR { k = $0; sub(/^[0-9]+ /, "", k); one[k] = $1; next }
        { k = $0; sub(/^[0-9]+ /, "", k); printf "%8.1f  %s\n", ($1 - one[k]) / n, k }
    ' "$OUT/ours.$N.self" "$OUT/ours.$((2 * N)).self" |
        sort -rn | awk -v top="$TOP" 'NR <= top' >"$OUT/callgrind-top.txt"
fi

for name in "${NAMES[@]}"; do
    echo "RSS with $IDLE idle TLS connections: $name" >&2
    pinned "$name"
    if ! tls_bench --mode idle --conns "$IDLE" --secs 1 --server-pid "$SERVER_PID" --json \
        >"$OUT/$name.idle.json" 2>"$OUT/$name.idle.err"; then
        echo "warning: $name idle: bench failed:" >&2
        cat "$OUT/$name.idle.err" >&2
    fi
    stop_server
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

python3 "$ROOT/scripts/tls-compare.py" "$OUT" "$ROUNDS" "$SECS" "$N" "$IDLE" "$HSCONNS" \
    "$LOAD_START" "$LOAD_MID" "$LOAD_END" "$((SECONDS - T0))" \
    "$(cd "$ROOT" && git rev-parse --short HEAD)" "$TSV" >"$MD"
cat "$MD"
echo >&2
echo "written to ${MD#"$ROOT"/} and ${TSV#"$ROOT"/}; raw figures in ${OUT#"$ROOT"/}/" >&2
