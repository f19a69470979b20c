#!/usr/bin/env bash
# Chat fan-out, edgechat against the peer shaped like tokio's chat example
# (examples/peer_tokio_chat.rs), on one machine, 127.0.0.1 only:
#
#   scripts/chat-compare.sh
#   SECS=3 ROUNDS=5 CG_N=2000 IDLE=10000 scripts/chat-compare.sh
#   PARTS=cg scripts/chat-compare.sh       # only some of: fan cg idle
#   scripts/chat-compare.sh --quick        # 1 round of 1 s, CG_N=200, IDLE=2000
#
# 1. Fan-out: the server on CPU 0 (taskset -c 0), `edgechat bench --mode
#    chat` on CPU 1; 1 sender x 100 and x 1000 receivers, D = 1 and 256
#    lines in flight; ROUNDS interleaved rounds (a fresh server per run, the
#    two servers alternating which goes first), and the median of each
#    figure: delivered lines/s, server CPU us per delivery, p50, p99 and
#    p999 latency.
# 2. Counts per delivery, 100 receivers, D = 1, each a two-point difference
#    (scripts/lib.sh two_point) over exactly N and 2N lines:
#    (count(2N) - count(N)) / (N x 100), so start-up, connecting and
#    shutdown cancel out: user-space instructions (callgrind, N = CG_N) and
#    syscalls (perf or strace, N = SYS_SCALE x CG_N, SYS_SCALE=1). The
#    join storm of connecting 101 clients costs a varying few million
#    instructions and a few thousand syscalls, so N needs to be about 1000
#    lines for the figure to hold within a few percent.
# 3. Idle: the server's RSS per connection with IDLE idle chat clients.
#
# COUNT_JOBS=2 makes the counts of both servers at once (scripts/lib.sh
# each_server). Prints two markdown tables. Outputs stay in
# target/measure/chat-compare/;
# runs.txt has one line per fan-out run: name, receivers, depth, lines/s,
# CPU us per delivery, p99, p50, p999 (us).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/quick.sh
source "$(dirname "${BASH_SOURCE[0]}")/quick.sh"
parse_quick "$@"
if ((QUICK)); then
    SECS=${SECS:-1} WARMUP=${WARMUP:-0.3} ROUNDS=${ROUNDS:-1} CG_N=${CG_N:-200} IDLE=${IDLE:-2000}
fi
SECS=${SECS:-2}       # measured seconds per fan-out run (after WARMUP)
WARMUP=${WARMUP:-0.5}
ROUNDS=${ROUNDS:-3}
CG_N=${CG_N:-1000}    # two-point counts: lines in the short run; the long run sends 2N
CG_RECEIVERS=100
SYS_SCALE=${SYS_SCALE:-1}
IDLE=${IDLE:-10000}   # idle chat clients
PARTS=${PARTS:-"fan cg idle"} # cg: both two-point counts
NAMES=(edgechat peer)
OUT=$ROOT/target/measure/chat-compare

command -v valgrind >/dev/null || {
    echo "valgrind not found (apt-get install valgrind)" >&2
    exit 1
}
command -v taskset >/dev/null || {
    echo "taskset not found (apt-get install util-linux)" >&2
    exit 1
}
ulimit -n "$(ulimit -Hn)" # thousands of connections on both sides
build
mkdir -p "$OUT"
rm -f "$OUT"/runs.txt

# chat_argv NAME: sets SERVER_ARGV to the command serving chat on a free port.
chat_argv() {
    case $1 in
        edgechat) SERVER_ARGV=("$REL/edgechat" serve --tcp 127.0.0.1:0 --max-clients $((IDLE + 100))) ;;
        peer) SERVER_ARGV=("$REL/examples/peer_tokio_chat" 127.0.0.1:0) ;;
        *)
            echo "unknown server: $1 (edgechat, peer)" >&2
            return 1
            ;;
    esac
}

# start NAME TAG [WRAPPER...]: starts server NAME on CPU 0, under WRAPPER.
start() {
    local name=$1 tag=$2
    shift 2
    chat_argv "$name"
    start_server "$OUT/$tag.log" "$OUT/$tag.pid" "${PIDWRAP[@]}" "$OUT/$tag.pid" \
        taskset -c 0 "$@" "${SERVER_ARGV[@]}"
}

# kill_server: SIGKILL (nothing to flush in a measurement run), then reap.
kill_server() {
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$LEADER" 2>/dev/null || true
}

# bench TAG ARGS...: edgechat bench on CPU 1 against the running server;
# prints its JSON line (and fails loudly if it failed).
bench() {
    local tag=$1
    shift
    if ! timeout 300 taskset -c 1 "$REL/edgechat" bench --addr "$ADDR" \
        --server-pid "$SERVER_PID" --json "$@" >"$OUT/$tag.json" 2>"$OUT/$tag.err"; then
        cat "$OUT/$tag.json" "$OUT/$tag.err" >&2
        return 1
    fi
    cat "$OUT/$tag.json"
}

# median of the arguments (- for none).
median() {
    (($#)) || {
        echo -
        return
    }
    printf '%s\n' "$@" | sort -g |
        awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B to two decimals.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f", a / b }'
}

# fmt PLACES X: X with PLACES decimals (- stays -).
fmt() {
    awk -v p="$1" -v x="$2" 'BEGIN { if (x == "-") print x; else printf "%.*f", p, x }'
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# part NAME: whether PARTS asks for it.
part() {
    [[ " $PARTS " == *" $1 "* ]]
}

# 1. Fan-out, interleaved rounds.
part fan || ROUNDS=0
touch "$OUT/runs.txt"
for ((round = 1; round <= ROUNDS; round++)); do
    for receivers in 100 1000; do
        for depth in 1 256; do
            order=("${NAMES[@]}")
            ((round % 2)) || order=("${NAMES[1]}" "${NAMES[0]}")
            for name in "${order[@]}"; do
                tag=fan.$name.$receivers.$depth.$round
                start "$name" "$tag"
                json=$(bench "$tag" --mode chat --senders 1 --receivers "$receivers" \
                    --depth "$depth" --secs "$SECS" --warmup "$WARMUP")
                kill_server
                echo "$name $receivers $depth $(jget lines_per_sec "$json")" \
                    "$(jget server_cpu_us_per_delivery "$json") $(jget p99_us "$json")" \
                    "$(jget p50_us "$json") $(jget p999_us "$json")" >>"$OUT/runs.txt"
                echo "round $round: $name R=$receivers D=$depth: $(jget lines_per_sec "$json") lines/s" >&2
            done
        done
    done
done

# fig NAME RECEIVERS DEPTH COLUMN: the median of one figure over the rounds.
fig() {
    # shellcheck disable=SC2046  # one number per word
    median $(awk -v n="$1" -v r="$2" -v d="$3" -v c="$4" \
        '$1 == n && $2 == r && $3 == d { print $c }' "$OUT/runs.txt")
}

# 2. Counts per delivery, two-point, CG_RECEIVERS receivers and D = 1.
declare -A IR=([edgechat]=- [peer]=-) SYS=([edgechat]=- [peer]=-)
TP_DIR=$OUT/twopoint
CG_LOAD=(--mode chat --senders 1 --receivers "$CG_RECEIVERS" --depth 1)
# count NAME: "NAME IR SYS" per delivery ("-" for a count that failed).
count() {
    local ir=- sys=- line
    chat_argv "$1"
    if line=$(two_point callgrind "$1" "$CG_N" "$CG_RECEIVERS" bench_count "${CG_LOAD[@]}"); then
        ir=$(printf '%.0f' "${line%%$'\t'*}")
        echo "callgrind: $1: $ir Ir per delivery (${line#*$'\t'})" >&2
    fi
    if line=$(two_point syscalls "$1" $((SYS_SCALE * CG_N)) "$CG_RECEIVERS" bench_count "${CG_LOAD[@]}"); then
        sys=${line%%$'\t'*}
        echo "syscalls: $1: $sys per delivery (${line#*$'\t'})" >&2
    fi
    echo "$1 $ir $sys"
}
if part cg; then
    while read -r name ir sys; do
        IR[$name]=$ir SYS[$name]=$sys
    done < <(each_server count "${NAMES[@]}")
fi

# 3. Idle clients: RSS per connection once the server has gone quiet.
declare -A RSS=([edgechat]=- [peer]=-) SETTLE=([edgechat]=- [peer]=-)
for name in "${NAMES[@]}"; do
    part idle || break
    start "$name" "idle.$name"
    json=$(bench "idle.$name" --mode idle --conns "$IDLE" --secs 2)
    kill_server
    RSS[$name]=$(jget rss_per_conn_bytes "$json")
    SETTLE[$name]=$(jget settle_secs "$json")
    echo "idle: $name ${RSS[$name]} B per connection (settled in ${SETTLE[$name]} s)" >&2
done

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "Fan-out, 1 sender, ${SECS} s per run, median of $ROUNDS rounds (edgechat / peer = ratio):"
echo
echo "| receivers | D | lines/s edgechat | lines/s peer | ratio | CPU us/delivery edgechat | CPU us/delivery peer | ratio | p50/p99/p999 us edgechat | p50/p99/p999 us peer |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for receivers in 100 1000; do
    for depth in 1 256; do
        lo=$(fig edgechat "$receivers" "$depth" 4)
        lp=$(fig peer "$receivers" "$depth" 4)
        co=$(fig edgechat "$receivers" "$depth" 5)
        cp=$(fig peer "$receivers" "$depth" 5)
        po="$(fmt 0 "$(fig edgechat "$receivers" "$depth" 7)")/$(fmt 0 "$(fig edgechat "$receivers" "$depth" 6)")/$(fmt 0 "$(fig edgechat "$receivers" "$depth" 8)")"
        pp="$(fmt 0 "$(fig peer "$receivers" "$depth" 7)")/$(fmt 0 "$(fig peer "$receivers" "$depth" 6)")/$(fmt 0 "$(fig peer "$receivers" "$depth" 8)")"
        printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
            "$receivers" "$depth" "$(fmt 0 "$lo")" "$(fmt 0 "$lp")" "$(ratio "$lo" "$lp")" \
            "$(fmt 3 "$co")" "$(fmt 3 "$cp")" "$(ratio "$co" "$cp")" "$po" "$pp"
    done
done
echo
echo "| figure | edgechat | peer | ratio | goal |"
echo "|---|---:|---:|---:|---|"
echo "| user-space Ir per delivery (callgrind, $CG_RECEIVERS receivers, D=1, N=$CG_N) |" \
    "${IR[edgechat]} | ${IR[peer]} | $(ratio "${IR[edgechat]}" "${IR[peer]}") | <= 0.33 |"
echo "| syscalls per delivery ($CG_RECEIVERS receivers, D=1, N=$((SYS_SCALE * CG_N))) |" \
    "${SYS[edgechat]} | ${SYS[peer]} | $(ratio "${SYS[edgechat]}" "${SYS[peer]}") | |"
echo "| RSS per idle chat client, $IDLE clients (B) |" \
    "${RSS[edgechat]} | ${RSS[peer]} | $(ratio "${RSS[edgechat]}" "${RSS[peer]}") | edgechat <= 1024 |"
echo "| seconds until $IDLE clients are connected and quiet |" \
    "${SETTLE[edgechat]} | ${SETTLE[peer]} | | |"
echo
echo "load average at end: $load_end; goals: CPU/delivery ratio <= 0.9 at D=1, lines/s ratio >= 1.5 at D=256"
