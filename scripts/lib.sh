# shellcheck shell=bash disable=SC2034  # variables here are used by the sourcing scripts
# Helpers shared by the measurement scripts: build, start a server on a free
# 127.0.0.1 port, drive it with exactly N pingpong messages, stop it, and
# clean up every process started, whatever happens.
#
# Sourced, not run. The caller sets `set -euo pipefail`.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REL=$ROOT/target/release

N=${N:-20000}        # messages in the short run; the long run sends 2N
CONNS=${CONNS:-50}   # connections, one message in flight on each
SIZE=${SIZE:-64}     # bytes per message
SERVERS=${SERVERS:-"edgechat tokio mio blocking"}

# Writes the wrapped process's pid to "$0", then becomes the command: put it
# right before the server so the pid is the server's, whatever runs outside.
# shellcheck disable=SC2016  # expanded by that sh, not here
PIDWRAP=(sh -c 'echo $$ >"$0"; exec "$@"')

STARTED=()

build() {
    (cd "$ROOT" && cargo build --release --examples --bins --quiet)
}

# server_argv NAME: sets SERVER_ARGV to the command serving echo on a free port.
server_argv() {
    case $1 in
        edgechat) SERVER_ARGV=("$REL/edgechat" serve --mode echo --tcp 127.0.0.1:0) ;;
        tokio) SERVER_ARGV=("$REL/examples/peer_tokio_echo" 127.0.0.1:0) ;;
        mio) SERVER_ARGV=("$REL/examples/peer_mio_echo" 127.0.0.1:0) ;;
        blocking) SERVER_ARGV=("$REL/examples/baseline_blocking_echo" 127.0.0.1:0) ;;
        *)
            echo "unknown server: $1 (edgechat, tokio, mio, blocking)" >&2
            return 1
            ;;
    esac
}

running() {
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1) || return 1
    [[ -n $state && $state != Z ]]
}

# start_server LOG PIDFILE CMD...: runs CMD (which contains PIDWRAP PIDFILE)
# with stderr to LOG, and waits for its `listening on tcp://ADDR` line
# (`tls://` with SCHEME=tls). Sets LEADER (the process started), SERVER_PID
# and ADDR.
start_server() {
    local log=$1 pidfile=$2 i
    shift 2
    rm -f "$pidfile"
    "$@" </dev/null >/dev/null 2>"$log" &
    LEADER=$!
    STARTED+=("$LEADER")
    for ((i = 0; i < 600; i++)); do
        if [[ -s $pidfile ]] && grep -q "listening on ${SCHEME:-tcp}://" "$log"; then
            SERVER_PID=$(cat "$pidfile")
            STARTED+=("$SERVER_PID")
            ADDR=$(grep -m 1 -o "listening on ${SCHEME:-tcp}://[0-9.:]*" "$log")
            ADDR=${ADDR#"listening on ${SCHEME:-tcp}://"}
            return 0
        fi
        if ! running "$LEADER"; then
            break
        fi
        sleep 0.1
    done
    echo "server did not start: $*" >&2
    tail -n 20 "$log" >&2
    return 1
}

# stop_server: SIGTERM to the server, then wait for whatever wraps it.
stop_server() {
    local i
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for ((i = 0; i < 600; i++)); do
        running "$LEADER" || break
        sleep 0.1
    done
    if running "$LEADER"; then
        echo "server $SERVER_PID ignored SIGTERM for 60 s: killed" >&2
        kill -KILL "$SERVER_PID" "$LEADER" 2>/dev/null || true
    fi
    wait "$LEADER" 2>/dev/null || true
}

# drive COUNT LOG: exactly COUNT messages to ADDR, every byte checked.
drive() {
    if ! timeout 300 "$REL/examples/pingpong_driver" "$ADDR" "$1" "$CONNS" "$SIZE" 2>"$2"; then
        cat "$2" >&2
        return 1
    fi
}

cleanup() {
    local pid
    for pid in "${STARTED[@]}"; do
        if running "$pid"; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    sleep 0.2
    for pid in "${STARTED[@]}"; do
        if running "$pid"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# runq_ns PID: nanoseconds the process's threads have spent runnable but
# waiting for a CPU (/proc/PID/task/*/schedstat, second field).
runq_ns() {
    cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $2 } END { printf "%.0f\n", s }'
}

# rounds: ROUNDS interleaved rounds over the servers in NAMES; each is
# started by the caller's `pinned NAME`, measured by its `bench NAME ROUND
# LOAD FLAGS...` once for every "LOAD FLAGS..." entry of LOADS, and stopped.
# shellcheck disable=SC2154  # ROUNDS, NAMES, LOADS: set by the caller
rounds() {
    local round name spec load flags
    for ((round = 1; round <= ROUNDS; round++)); do
        for name in "${NAMES[@]}"; do
            echo "round $round/$ROUNDS: $name" >&2
            pinned "$name"
            for spec in "${LOADS[@]}"; do
                read -r load flags <<<"$spec"
                # shellcheck disable=SC2086  # flags are words
                bench "$name" "$round" "$load" $flags
            done
            stop_server
        done
    done
}
