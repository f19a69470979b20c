#!/usr/bin/env bash
# TLS echo, side by side: edgechat (`serve --mode echo --tls`) against the
# tokio-rustls peer (examples/peer_tokio_rustls_echo.rs: current_thread
# runtime, same certificate, same provider, tickets on), with each figure
# beside its target.
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
# Then, once per server and for each of those loads: syscalls and
# user-space instructions per operation (message or handshake), each a
# two-point difference, (count(2N) - count(N)) / N with exactly N and 2N
# operations (`bench --count`; scripts/lib.sh two_point), so start-up and
# the handshakes before the count cancel out; and server RSS per idle TLS
# connection with IDLE (2000) connections open, handshakes done (`bench
# --mode idle --tls`).
#
# Writes the markdown table and the goals to target/bench/tls-compare.md,
# the same figures as `figure<TAB>ours<TAB>peer` lines to
# target/bench/tls-compare.tsv, raw figures to target/bench/tls-compare/.
# The machine may be shared: the load average goes under the table, and a
# row gives the share of each run the server spent runnable but waiting for
# CPU 0 (/proc/PID/task/*/schedstat), as in echo-compare.sh.
#
# Environment: ROUNDS, SECS, WARMUP, IDLE (idle connections, 2000), HSCONNS
# (connections handshaking at once, 8), TOP (ours' callgrind self cost per
# pingpong message by function, 25; 0 skips), and the two-point counts:
# N (pingpong messages; 5000, or 1000 with --quick), ST_N (stream messages;
# 200, or 50), HS_N (handshakes, each kind; 40, or 10) under callgrind, and
# SYS_SCALE (how many times those the syscall counts use, 4: they cost
# next to nothing); CG_LOADS and SYS_LOADS name the loads counted (all of
# "pp50 st1 hsfull hsres" by default); COUNT_JOBS=2 counts ours and the
# peer at once (scripts/lib.sh each_server).
set -euo pipefail
CG_N=${N:-} # lib.sh sets its own default N
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/quick.sh
source "$(dirname "${BASH_SOURCE[0]}")/quick.sh"
parse_quick "$@"
if ((QUICK)); then
    ROUNDS=${ROUNDS:-1} SECS=${SECS:-1} WARMUP=${WARMUP:-0.2} N=${CG_N:-1000}
    ST_N=${ST_N:-50} HS_N=${HS_N:-10}
else
    ROUNDS=${ROUNDS:-3} SECS=${SECS:-4} WARMUP=${WARMUP:-0.5} N=${CG_N:-5000}
fi
ST_N=${ST_N:-200}
HS_N=${HS_N:-40}
SYS_SCALE=${SYS_SCALE:-4}
CG_LOADS=${CG_LOADS:-"pp50 st1 hsfull hsres"}
SYS_LOADS=${SYS_LOADS:-"pp50 st1 hsfull hsres"}
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

# Two-point counts, per server and load: callgrind (Ir) and syscalls, the
# counts.tsv line "name<TAB>load<TAB>tool<TAB>per operation<TAB>detail".
COUNTS=(
    "pp50 $N --mode pingpong --conns 50 --size 64"
    "st1 $ST_N --mode stream --conns 1 --size 16384 --depth 4"
    "hsfull $HS_N --mode handshake --conns $HSCONNS --size 64"
    "hsres $HS_N --mode handshake --resume --conns $HSCONNS --size 64"
)
echo "syscalls and instructions per operation (two-point, callgrind N: $N, $ST_N, $HS_N)..." >&2
TP_DIR=$OUT/twopoint
# count NAME: every counts.tsv line of server NAME.
count() {
    local name=$1 spec load n flags tool ops line
    tls_argv "$name"
    for spec in "${COUNTS[@]}"; do
        read -r load n flags <<<"$spec"
        for tool in callgrind syscalls; do
            if [[ $tool == callgrind ]]; then
                [[ " $CG_LOADS " == *" $load "* ]] || continue
            else
                [[ " $SYS_LOADS " == *" $load "* ]] || continue
            fi
            ops=$n
            [[ $tool == callgrind ]] || ops=$((n * SYS_SCALE))
            # shellcheck disable=SC2086  # flags are words
            if line=$(two_point "$tool" "$name.$load" "$ops" 1 bench_count --tls --ca "$CA" $flags); then
                printf '%s\t%s\t%s\t%s\n' "$name" "$load" "$tool" "$line"
            else
                echo "warning: $name $load: $tool two-point count failed" >&2
            fi
        done
    done
}
each_server count "${NAMES[@]}" >"$OUT/counts.tsv"
if ((TOP > 0)) && [[ -s $(tp_file ours.pp50 $((2 * N)) callgrind) ]]; then
    selfcost_top ours.pp50 "$N" 1 "$TOP" >"$OUT/callgrind-top.txt"
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

python3 "$ROOT/scripts/tls-compare.py" "$OUT" "$ROUNDS" "$SECS" "$N $ST_N $HS_N $SYS_SCALE" "$IDLE" "$HSCONNS" \
    "$LOAD_START" "$LOAD_MID" "$LOAD_END" "$((SECONDS - T0))" \
    "$(cd "$ROOT" && git rev-parse --short HEAD)" "$TSV" >"$MD"
cat "$MD"
echo >&2
echo "written to ${MD#"$ROOT"/} and ${TSV#"$ROOT"/}; raw figures in ${OUT#"$ROOT"/}/" >&2
