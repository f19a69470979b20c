#!/usr/bin/env bash
# Chat fan-out: edgechat beside its peers, on one machine, 127.0.0.1 only:
#
#   edgechat  the server (serve --tcp)
#   tokio     examples/peer_tokio_chat.rs: tokio current_thread, a task and
#             an unbounded channel per client, each line one Arc<[u8]>,
#             a BufWriter flushed once per burst
#   redis     Redis pub/sub (redis-server --save '' --appendonly no)
#   nats      NATS core pub/sub (GOMAXPROCS=1 nats-server)
#   floor     examples/floor_relay.rs: raw edge-triggered epoll, a batch per
#             read copied to each receiver, one send per receiver per turn;
#             the reference edgechat is measured against, not a peer
#
#   scripts/chat-compare.sh
#   SECS=3 ROUNDS=5 CG_N=2000 IDLE=10000 scripts/chat-compare.sh
#   PARTS=cg scripts/chat-compare.sh       # only some of: fan cg idle
#   CHAT_SERVERS="edgechat tokio floor" scripts/chat-compare.sh   # fewer servers
#   scripts/chat-compare.sh --quick        # 1 round of 1 s, D = 1 and 256 only,
#                                          # CG_N=200, IDLE=2000
#
# 1. Fan-out: each server pinned to CPU 0 (taskset -c 0), `edgechat bench
#    --mode chat` on CPU 1 (`--proto redis` or `--proto nats` for Redis and
#    NATS, the same flags otherwise); 1 sender, R = 100 and 1000 receivers,
#    D = 1, 16, 64 and 256 lines in flight, 64-byte lines; ROUNDS
#    interleaved rounds (a fresh server per run, the order of the servers
#    turning by one each round), and the median of each figure: deliveries/s,
#    server CPU us per delivery, p50, p99 and p999 latency, and the load
#    generator's own CPU per delivery.
#    Redis and NATS are Debian's `redis-server` and `nats-server`, installed
#    with `apt-get install -y` when missing; if one cannot be installed, or
#    `edgechat bench` has no `--proto`, the script stops and says so (leave
#    that server out of CHAT_SERVERS to go on without it).
# 2. Counts per delivery, edgechat and the tokio peer, 100 receivers, D = 1,
#    each a two-point difference (scripts/lib.sh two_point) over exactly N
#    and 2N lines: (count(2N) - count(N)) / (N x 100), so start-up,
#    connecting and shutdown cancel out: user-space instructions
#    (callgrind, N = CG_N) and syscalls (perf or strace, N = SYS_SCALE x
#    CG_N, SYS_SCALE=1). The join storm of connecting 101 clients costs a
#    varying few million instructions and a few thousand syscalls, so N
#    needs to be about 1000 lines for the figure to hold within a few
#    percent.
# 3. Idle, edgechat and the tokio peer: the server's RSS per connection
#    with IDLE idle chat clients.
#
# COUNT_JOBS=2 makes the counts of both servers at once (scripts/lib.sh
# each_server). Prints markdown tables. Outputs stay in
# target/measure/chat-compare/; runs.txt has one line per fan-out run:
# name, receivers, depth, lines/s, server CPU us per delivery, p99, p50,
# p999 (us), deliveries/s, generator CPU us per delivery, generator CPU %
# of its core.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/quick.sh
source "$(dirname "${BASH_SOURCE[0]}")/quick.sh"
parse_quick "$@"
if ((QUICK)); then
    SECS=${SECS:-1} WARMUP=${WARMUP:-0.3} ROUNDS=${ROUNDS:-1} CG_N=${CG_N:-200} IDLE=${IDLE:-2000}
    DEPTHS=${DEPTHS:-"1 256"}
fi
SECS=${SECS:-2}       # measured seconds per fan-out run (after WARMUP)
WARMUP=${WARMUP:-0.5}
ROUNDS=${ROUNDS:-3}
CG_N=${CG_N:-1000}    # two-point counts: lines in the short run; the long run sends 2N
CG_RECEIVERS=100
SYS_SCALE=${SYS_SCALE:-1}
IDLE=${IDLE:-10000}   # idle chat clients
PARTS=${PARTS:-"fan cg idle"} # cg: both two-point counts
CHAT_SERVERS=${CHAT_SERVERS:-"edgechat tokio redis nats floor"}
read -ra NAMES <<<"$CHAT_SERVERS"
PEERS=()       # the peers among NAMES, for "the best peer"
COUNTED=()     # counted (cg) and measured idle: edgechat and the tokio peer
for name in "${NAMES[@]}"; do
    case $name in
        edgechat) COUNTED+=("$name") ;;
        tokio) PEERS+=("$name") COUNTED+=("$name") ;;
        redis | nats) PEERS+=("$name") ;;
        floor) ;;
        *)
            echo "unknown server: $name (edgechat, tokio, redis, nats, floor)" >&2
            exit 2
            ;;
    esac
done
RECEIVERS=${RECEIVERS:-"100 1000"}
DEPTHS=${DEPTHS:-"1 16 64 256"}
LINE=64 # bytes per line, \n included
OUT=$ROOT/target/measure/chat-compare

command -v taskset >/dev/null || {
    echo "taskset not found (apt-get install util-linux)" >&2
    exit 1
}
if [[ " $PARTS " == *" cg "* ]] && ! command -v valgrind >/dev/null; then
    echo "valgrind not found (apt-get install valgrind), needed for PARTS=cg" >&2
    exit 1
fi
# Redis and NATS: installed if missing; `edgechat bench` must speak to them.
REDIS= NATS=
if [[ " $PARTS " == *" fan "* ]]; then
    for name in "${NAMES[@]}"; do
        case $name in
            redis) REDIS=$(need_program redis-server redis-server) || exit 1 ;;
            nats) NATS=$(need_program nats-server nats-server) || exit 1 ;;
        esac
    done
fi
ulimit -n "$(ulimit -Hn)" # thousands of connections on both sides
build
if [[ -n $REDIS$NATS ]] && ! "$REL/edgechat" bench --help 2>/dev/null | grep -q -- '--proto'; then
    echo "this edgechat bench has no --proto: it cannot load Redis or NATS;" \
        "leave them out (CHAT_SERVERS=\"edgechat tokio floor\")" >&2
    exit 1
fi
mkdir -p "$OUT"
rm -f "$OUT"/runs.txt

# chat_argv NAME: sets SERVER_ARGV to the command serving chat on a free port
# (for Redis and NATS, on ADDR, which it sets), READY to what its log says
# once it is up (empty: the `listening on` line), PROTO to the protocol
# `edgechat bench --proto` speaks to it, and ENV to the environment it runs in.
chat_argv() {
    READY= PROTO=edgechat ENV=()
    case $1 in
        edgechat) SERVER_ARGV=("$REL/edgechat" serve --tcp 127.0.0.1:0 --max-clients $((IDLE + 100))) ;;
        tokio) SERVER_ARGV=("$REL/examples/peer_tokio_chat" 127.0.0.1:0) ;;
        floor) SERVER_ARGV=("$REL/examples/floor_relay" 127.0.0.1:0) ;;
        redis)
            ADDR=127.0.0.1:$(free_port) || return 1
            SERVER_ARGV=("$REDIS" --bind 127.0.0.1 --port "${ADDR##*:}" --save '' --appendonly no)
            READY='Ready to accept connections' PROTO=redis
            ;;
        nats)
            ADDR=127.0.0.1:$(free_port) || return 1
            SERVER_ARGV=("$NATS" -a 127.0.0.1 -p "${ADDR##*:}")
            READY='Server is ready' PROTO=nats ENV=(GOMAXPROCS=1)
            ;;
        *)
            echo "unknown server: $1 (edgechat, tokio, redis, nats, floor)" >&2
            return 1
            ;;
    esac
}

# start NAME TAG [WRAPPER...]: starts server NAME on CPU 0, under WRAPPER.
start() {
    local name=$1 tag=$2
    shift 2
    chat_argv "$name" || return 1
    if [[ -n $READY ]]; then
        start_ready "$OUT/$tag.log" "$OUT/$tag.pid" "$READY" "${PIDWRAP[@]}" "$OUT/$tag.pid" \
            taskset -c 0 env "${ENV[@]}" "$@" "${SERVER_ARGV[@]}"
    else
        start_server "$OUT/$tag.log" "$OUT/$tag.pid" "${PIDWRAP[@]}" "$OUT/$tag.pid" \
            taskset -c 0 "$@" "${SERVER_ARGV[@]}"
    fi
}

# kill_server: SIGKILL (nothing to flush in a measurement run), then reap.
kill_server() {
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$LEADER" 2>/dev/null || true
}

# bench TAG ARGS...: edgechat bench on CPU 1 against the running server;
# prints its JSON line (and fails loudly, naming the run, if it failed).
bench() {
    local tag=$1
    shift
    if ! timeout 300 taskset -c 1 "$REL/edgechat" bench --addr "$ADDR" \
        --server-pid "$SERVER_PID" --json "$@" >"$OUT/$tag.json" 2>"$OUT/$tag.err"; then
        echo "edgechat bench failed against $tag ($*):" >&2
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

# best LOW X...: the lowest of the Xs with LOW=1, else the highest (- when
# none is a number).
best() {
    local low=$1
    shift
    printf '%s\n' "$@" | awk -v low="$low" '$1 != "-" { if (!n++ || (low ? $1 < b : $1 > b)) b = $1 }
        END { print n ? b : "-" }'
}

echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# part NAME: whether PARTS asks for it.
part() {
    [[ " $PARTS " == *" $1 "* ]]
}

# 1. Fan-out, interleaved rounds: round k starts with the k-th server.
part fan || ROUNDS=0
touch "$OUT/runs.txt"
for ((round = 1; round <= ROUNDS; round++)); do
    for receivers in $RECEIVERS; do
        for depth in $DEPTHS; do
            k=$(((round - 1) % ${#NAMES[@]}))
            order=("${NAMES[@]:k}" "${NAMES[@]:0:k}")
            for name in "${order[@]}"; do
                tag=fan.$name.$receivers.$depth.$round
                start "$name" "$tag"
                proto=()
                [[ $PROTO == edgechat ]] || proto=(--proto "$PROTO")
                json=$(bench "$tag" --mode chat "${proto[@]}" --senders 1 \
                    --receivers "$receivers" --depth "$depth" --size "$LINE" \
                    --secs "$SECS" --warmup "$WARMUP")
                kill_server
                echo "$name $receivers $depth $(jget lines_per_sec "$json")" \
                    "$(jget server_cpu_us_per_delivery "$json") $(jget p99_us "$json")" \
                    "$(jget p50_us "$json") $(jget p999_us "$json")" \
                    "$(jget deliveries_per_sec "$json") $(jget gen_cpu_us_per_delivery "$json")" \
                    "$(jget gen_cpu_pct "$json")" >>"$OUT/runs.txt"
                echo "round $round: $name R=$receivers D=$depth:" \
                    "$(jget deliveries_per_sec "$json") deliveries/s" >&2
            done
        done
    done
done

# fig NAME RECEIVERS DEPTH COLUMN: the median of one figure over the rounds.
fig() {
    # shellcheck disable=SC2046  # one number per word
    median $(awk -v n="$1" -v r="$2" -v d="$3" -v c="$4" \
        '$1 == n && $2 == r && $3 == d && $c != "" && $c != "null" { print $c }' "$OUT/runs.txt")
}

# 2. Counts per delivery, two-point, CG_RECEIVERS receivers and D = 1.
declare -A IR=() SYS=() RSS=() SETTLE=()
for name in "${COUNTED[@]}"; do
    IR[$name]=- SYS[$name]=- RSS[$name]=- SETTLE[$name]=-
done
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
if part cg && ((${#COUNTED[@]})); then
    while read -r name ir sys; do
        IR[$name]=$ir SYS[$name]=$sys
    done < <(each_server count "${COUNTED[@]}")
fi

# 3. Idle clients: RSS per connection once the server has gone quiet.
for name in "${COUNTED[@]}"; do
    part idle || break
    start "$name" "idle.$name"
    json=$(bench "idle.$name" --mode idle --conns "$IDLE" --secs 2)
    kill_server
    RSS[$name]=$(jget rss_per_conn_bytes "$json")
    SETTLE[$name]=$(jget settle_secs "$json")
    echo "idle: $name ${RSS[$name]} B per connection (settled in ${SETTLE[$name]} s)" >&2
done

# fan_table TITLE COLUMN PLACES LOW: one markdown table of a fan-out figure:
# a row per load, a column per server, then edgechat against the best peer
# (the lowest with LOW=1, the highest with LOW=0) and against the floor;
# LOW=- for a figure of the load, not the server: no ratios.
fan_table() {
    local title=$1 col=$2 places=$3 low=$4 receivers depth name v row peers ours
    echo "$title"
    echo
    row="| receivers | D |"
    for name in "${NAMES[@]}"; do
        row+=" $name |"
    done
    if [[ $low == - ]]; then
        echo "$row"
        echo "|---:|---:|$(printf -- '---:|%.0s' "${NAMES[@]}")"
    else
        echo "$row edgechat / best peer | edgechat / floor |"
        echo "|---:|---:|$(printf -- '---:|%.0s' "${NAMES[@]}")---:|---:|"
    fi
    for receivers in $RECEIVERS; do
        for depth in $DEPTHS; do
            row="| $receivers | $depth |" peers=() ours=-
            declare -A val=([floor]=-)
            for name in "${NAMES[@]}"; do
                v=$(fig "$name" "$receivers" "$depth" "$col")
                val[$name]=$v
                row+=" $(fmt "$places" "$v") |"
            done
            if [[ $low == - ]]; then
                echo "$row"
            else
                for name in "${PEERS[@]}"; do
                    peers+=("${val[$name]}")
                done
                [[ " ${NAMES[*]} " == *" edgechat "* ]] && ours=${val[edgechat]}
                echo "$row $(ratio "$ours" "$(best "$low" "${peers[@]}")") | $(ratio "$ours" "${val[floor]}") |"
            fi
            unset val
        done
    done
    echo
}

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
if part fan; then
    echo "Chat fan-out, 1 sender, $LINE-byte lines, R receivers, D lines in flight;" \
        "${SECS} s per run, median of $ROUNDS rounds. Peers: ${PEERS[*]}; floor: the raw epoll relay (a reference)."
    echo
    fan_table "Deliveries per second (higher is better):" 9 0 0
    fan_table "Server CPU per delivery, µs (lower is better):" 5 3 1
    fan_table "p99 latency, sent to delivered, µs (lower is better):" 6 0 1
    fan_table "Load generator's own CPU per delivery, µs (context: the load, not the server):" 10 3 -
fi
if ((${#COUNTED[@]} == 2)) && { part cg || part idle; }; then
    echo "| figure | edgechat | tokio | edgechat / tokio |"
    echo "|---|---:|---:|---:|"
    if part cg; then
        echo "| user-space instructions per delivery (callgrind, $CG_RECEIVERS receivers, D=1, N=$CG_N) |" \
            "${IR[edgechat]} | ${IR[tokio]} | $(ratio "${IR[edgechat]}" "${IR[tokio]}") |"
        echo "| syscalls per delivery ($CG_RECEIVERS receivers, D=1, N=$((SYS_SCALE * CG_N))) |" \
            "${SYS[edgechat]} | ${SYS[tokio]} | $(ratio "${SYS[edgechat]}" "${SYS[tokio]}") |"
    fi
    if part idle; then
        echo "| RSS per idle chat client, $IDLE clients: B |" \
            "${RSS[edgechat]} | ${RSS[tokio]} | $(ratio "${RSS[edgechat]}" "${RSS[tokio]}") |"
        echo "| seconds until $IDLE clients are connected and quiet |" \
            "${SETTLE[edgechat]} | ${SETTLE[tokio]} | |"
    fi
    echo
fi
echo "load average at end: $load_end"
