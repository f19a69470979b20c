# shellcheck shell=bash disable=SC2034  # variables here are used by the sourcing scripts
# Helpers shared by the measurement scripts: build, start a server on a free
# 127.0.0.1 port, drive it with exactly N pingpong messages, stop it, count
# what it does per operation (two_point), and clean up every process
# started, whatever happens.
#
# Sourced, not run. The caller sets `set -euo pipefail`. The binaries are
# taken from $CARGO_TARGET_DIR/release when that is set (cargo builds there),
# else target/release; outputs go under target/ either way.

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
REL=${CARGO_TARGET_DIR:-target}
[[ $REL == /* ]] || REL=$ROOT/$REL # cargo runs in $ROOT (build)
REL=$REL/release

N=${N:-20000}        # messages in the short run; the long run sends 2N
CONNS=${CONNS:-50}   # connections, one message in flight on each
SIZE=${SIZE:-64}     # bytes per message
SERVERS=${SERVERS:-"edgechat tokio mio blocking"}

# Writes the wrapped process's pid to "$0", then becomes the command: put it
# right before the server so the pid is the server's, whatever runs outside.
# shellcheck disable=SC2016  # expanded by that sh, not here
PIDWRAP=(sh -c 'echo $$ >"$0"; exec "$@"')

STARTED=()

# build: the release binaries and examples (skipped when scripts/bench.sh,
# which builds them first, runs this script: BENCH_BUILT=1).
build() {
    [[ -n ${BENCH_BUILT:-} ]] && return 0
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

# listen_addr LOG: the address of the first whole `listening on
# SCHEME://ADDR` line in LOG. Whole: stderr is unbuffered, so a server may
# write the line in pieces, and a line without its newline may be cut.
listen_addr() {
    local line
    [[ -f $1 ]] || return 1
    while IFS= read -r line; do # read fails on a last line with no newline
        if [[ $line =~ listening\ on\ ${SCHEME:-tcp}://([0-9.:]+) ]]; then
            echo "${BASH_REMATCH[1]}"
            return 0
        fi
    done <"$1"
    return 1
}

# start_server LOG PIDFILE CMD...: runs CMD (which contains PIDWRAP PIDFILE)
# with stderr to LOG, and waits for its `listening on tcp://ADDR` line
# (`tls://` with SCHEME=tls). Sets LEADER (the process started), SERVER_PID
# and ADDR.
start_server() {
    local log=$1 pidfile=$2
    shift 2
    rm -f "$pidfile"
    "$@" </dev/null >/dev/null 2>"$log" &
    wait_started "$log" "$pidfile" listening "$@"
}

# start_ready LOG PIDFILE READY CMD...: as start_server, for a server that
# does not print `listening on` (Redis, NATS): CMD (which contains PIDWRAP
# PIDFILE) listens on ADDR, which the caller sets (free_port); stdout and
# stderr go to LOG, and it is up once a line of LOG matches the extended
# regex READY. Sets LEADER and SERVER_PID.
start_ready() {
    local log=$1 pidfile=$2 ready=$3
    shift 3
    rm -f "$pidfile"
    "$@" </dev/null >"$log" 2>&1 &
    wait_started "$log" "$pidfile" "$ready" "$@"
}

# wait_started LOG PIDFILE READY CMD...: the server just started in the
# background (`$!`) is up once PIDFILE is written and LOG shows it ready:
# READY is `listening` (its `listening on` line, which also sets ADDR) or an
# extended regex. Gives up after 60 s or once the server has exited,
# showing the tail of LOG.
wait_started() {
    local log=$1 pidfile=$2 ready=$3 i
    shift 3
    LEADER=$!
    STARTED+=("$LEADER")
    for ((i = 0; i < 600; i++)); do
        if [[ -s $pidfile ]]; then
            if [[ $ready == listening ]]; then
                ADDR=$(listen_addr "$log") || ADDR=
            fi
            if { [[ $ready == listening ]] && [[ -n $ADDR ]]; } ||
                { [[ $ready != listening ]] && grep -Eq "$ready" "$log"; }; then
                SERVER_PID=$(cat "$pidfile")
                STARTED+=("$SERVER_PID")
                return 0
            fi
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

# free_port: a TCP port nothing listens on or talks from on this machine
# (/proc/net/tcp), for servers that cannot pick their own.
free_port() {
    local port i
    for ((i = 0; i < 100; i++)); do
        port=$((20000 + RANDOM % 40000))
        if ! grep -qi ":$(printf '%04X' "$port") " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    echo "no free TCP port found" >&2
    return 1
}

# need_program NAME PACKAGE: makes sure NAME runs (it may live in /usr/sbin,
# off a user's PATH); installs Debian's PACKAGE with apt-get if it is
# missing; prints the program's path. Fails, saying why, if it cannot.
need_program() {
    local name=$1 pkg=$2 path sudo=()
    path=$(PATH=$PATH:/usr/sbin:/sbin command -v "$name") && {
        echo "$path"
        return 0
    }
    ((EUID == 0)) || sudo=(sudo)
    echo "$name not found: apt-get install -y $pkg" >&2
    if ! command -v apt-get >/dev/null ||
        ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$pkg" >&2; then
        echo "could not install $pkg (for $name); install it, or leave its server out" >&2
        return 1
    fi
    path=$(PATH=$PATH:/usr/sbin:/sbin command -v "$name") || {
        echo "$pkg is installed but $name is still not found" >&2
        return 1
    }
    echo "$path"
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
# shellcheck disable=SC2154,SC2153  # ROUNDS, NAMES, LOADS: set by the caller (LOADS, not LOAD)
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

# jget KEY JSON: one value from a flat one-line JSON object (empty if absent).
jget() {
    sed -nE "s/.*\"$1\":([^,}]*).*/\1/p" <<<"$2"
}

# bench_count COUNT LOG FLAGS...: `edgechat bench --count COUNT FLAGS...`
# against ADDR, its stderr to LOG; fails unless it did exactly COUNT
# operations (messages; lines delivered to every receiver with --mode chat;
# handshakes with --mode handshake) with no error. Give --tls --ca CA among
# FLAGS for a TLS server.
bench_count() {
    local count=$1 log=$2 json key
    shift 2
    case " $* " in
        *" --mode chat "*) key=lines ;;
        *" --mode handshake "*) key=handshakes ;;
        *) key=msgs ;;
    esac
    if ! json=$(timeout 600 "$REL/edgechat" bench --addr "$ADDR" --json --count "$count" "$@" 2>"$log"); then
        echo "edgechat bench $* --count $count failed: $json" >&2
        cat "$log" >&2
        return 1
    fi
    if [[ $(jget "$key" "$json") != "$count" || $(jget errors "$json") != 0 ]]; then
        echo "edgechat bench $* --count $count: expected $count $key and no error: $json" >&2
        return 1
    fi
}

# Two-point counts: what a server does per operation, counted exactly. The
# server runs under a counting TOOL while a driver makes exactly N
# operations, then again (a fresh server) with 2N, and
#
#   per operation = (count(2N) - count(N)) / (N x PER)
#
# so start-up, connecting, handshakes before the count, closing and
# shutdown cancel out (PER: deliveries per line in chat fan-out, else 1).
# TOOL:
#
#   callgrind  user-space instructions (Ir) of the server process, counted
#              from when it listens; exact, and repeatable where the server's
#              work does not depend on timing. The server runs some 50x
#              slower under callgrind: keep N small.
#   perf       syscalls of every thread, `perf stat -e raw_syscalls:sys_enter`,
#              and those a server of this kind makes by name (the rest is
#              "other"); barely slows the server.
#   strace     syscalls, `strace -f -c`; slows every syscall down, and so
#              changes how many events one epoll_wait returns.
#   syscalls   perf when `perf stat -e raw_syscalls:sys_enter` works, else strace.
#
# As in the timed runs, the server runs on CPU 0 and the driver on CPU 1
# (with two CPUs or more, and taskset), so how many events one wakeup finds
# and how many reads a message takes, which decide the counts of a
# pipelined load, come from the same arrangement; with COUNT_JOBS=2 (see
# each_server) nothing is pinned. Under callgrind the server is some 50x
# slower than the driver, so one wakeup finds more events waiting; CONNS=1
# gives one wakeup per message.
TP_DIR=${TP_DIR:-$ROOT/target/measure/twopoint}

# The syscalls perf counts by name, for the breakdown; the rest is "other".
# Named one by one: enabling all ~360 tracepoints costs ~15 s per run, and
# even these cost perf about 0.03 s each to close at the end of a run. Set
# TP_NAMED= (empty) for the total alone, a second faster per run.
TP_NAMED=${TP_NAMED-"read write recvfrom sendto recvmsg sendmsg readv writev
    epoll_wait epoll_pwait epoll_ctl futex accept4 setsockopt shutdown close
    mmap munmap madvise brk"}

# tp_tool TOOL: TOOL, with `syscalls` resolved to perf or strace.
tp_tool() {
    if [[ $1 != syscalls ]]; then
        echo "$1"
    elif perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
        echo perf
    else
        echo strace
    fi
}

# tp_file TAG COUNT TOOL: where one run's raw counts are kept.
tp_file() {
    echo "$TP_DIR/$1.$2.$(tp_tool "$3")"
}

# pick_driver: the load for two_point from LOAD: sets DRIVER to the
# pingpong driver (drive, with CONNS and SIZE) when LOAD is empty, else to
# `edgechat bench --count N` with LOAD's flags (bench_count), and WHAT to
# a line saying which.
pick_driver() {
    DRIVER=(drive)
    WHAT="CONNS=$CONNS SIZE=$SIZE"
    if [[ -n ${LOAD:-} ]]; then
        # shellcheck disable=SC2206  # LOAD is flags, one per word
        DRIVER=(bench_count $LOAD)
        WHAT="edgechat bench $LOAD"
    fi
}

# count_run TOOL TAG COUNT DRIVER [ARGS...]: starts SERVER_ARGV (the caller
# sets it, and SCHEME=tls for a TLS listener) under TOOL on a free port,
# runs `DRIVER COUNT LOG ARGS...` (which must make exactly COUNT operations
# against ADDR, or fail), stops the server, and prints "name count" lines:
# "Ir TOTAL" for callgrind; "ALL TOTAL" and one line per syscall otherwise.
# Every step is checked by hand: callers run it under `||`, where set -e is
# off. Run it in a subshell (`$(count_run ...)`): it pins itself to CPU 1.
count_run() {
    local tool file pidfile log events s pin=()
    if ((${COUNT_JOBS:-1} <= 1 && $(nproc) >= 2)) && command -v taskset >/dev/null; then
        pin=(taskset -c 0)
    fi
    tool=$(tp_tool "$1")
    file=$(tp_file "$2" "$3" "$tool")
    pidfile=$TP_DIR/$2.pid log=$TP_DIR/$2.$3.$tool
    local count=$3 driver=$4
    shift 4
    mkdir -p "$TP_DIR" || return 1
    rm -f "$file"
    case $tool in
        callgrind)
            # Instrumented only once it listens: start-up is left out (it
            # would cancel anyway), and it runs at valgrind's plain speed,
            # which matters for a TLS server: aws-lc seeds its generator
            # from CPU jitter, some 420 M instructions that vary by a
            # million from run to run.
            start_server "$log.log" "$pidfile" "${PIDWRAP[@]}" "$pidfile" "${pin[@]}" \
                valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$file" \
                "${SERVER_ARGV[@]}" || return 1
            if ! callgrind_control -i on "$SERVER_PID" >"$log.control" 2>&1; then
                cat "$log.control" >&2
                stop_server
                return 1
            fi
            ;;
        perf)
            events=raw_syscalls:sys_enter
            for s in $TP_NAMED; do
                events+=,syscalls:sys_enter_$s
            done
            start_server "$log.log" "$pidfile" perf stat -x, -o "$file" -e "$events" -- \
                "${PIDWRAP[@]}" "$pidfile" "${pin[@]}" "${SERVER_ARGV[@]}" || return 1
            ;;
        strace)
            start_server "$log.log" "$pidfile" strace -f -c -o "$file" -- \
                "${PIDWRAP[@]}" "$pidfile" "${pin[@]}" "${SERVER_ARGV[@]}" || return 1
            ;;
        *)
            echo "unknown counting tool: $tool (callgrind, perf, strace, syscalls)" >&2
            return 1
            ;;
    esac
    # The driver, and this subshell with it, on CPU 1.
    if ((${#pin[@]})) && ! taskset -cp 1 "$BASHPID" >/dev/null; then
        stop_server
        return 1
    fi
    if ! "$driver" "$count" "$log.driver.log" "$@"; then
        stop_server
        return 1
    fi
    stop_server # SIGTERM: callgrind, perf and strace write their counts
    case $tool in
        callgrind) awk '/^totals:/ { print "Ir", $2; found = 1 } END { exit !found }' "$file" ;;
        perf) awk -F, '$1 ~ /^[0-9]+$/ && $3 ~ /sys_enter/ {
                if ($3 == "raw_syscalls:sys_enter") $3 = "ALL"
                sub(/.*sys_enter_/, "", $3); print $3, $1; found = 1 }
                END { exit !found }' "$file" ;;
        strace) awk '$NF != "total" && $(NF-1) ~ /^[0-9]+$/ && NF >= 5 {
                print $NF, ($(NF-2) ~ /^[0-9]+$/ && NF == 6) ? $(NF-2) : $(NF-1); found = 1 }
                END { exit !found }' "$file" ;;
    esac
}

# two_point TOOL TAG N PER DRIVER [ARGS...]: count_run with N operations and
# with 2N, and prints one line: the count per operation, a tab, and the
# detail (callgrind: "Ir(N)=... Ir(2N)=..."; syscalls: each one at 0.01 per
# operation or more, as "name x.xx, ..."). Fails, printing nothing, if
# either run fails, or if the 2N run counted less than the N run (what
# varies with timing outweighed N operations: N is too small). Raw counts
# stay in $TP_DIR (tp_file).
two_point() {
    local tool=$1 tag=$2 n=$3 per=$4 one two t0=$SECONDS
    shift 4
    tool=$(tp_tool "$tool")
    one=$(count_run "$tool" "$tag" "$n" "$@") || return 1
    two=$(count_run "$tool" "$tag" $((2 * n)) "$@") || return 1
    echo "  $tag: $tool, N=$n and 2N, $((SECONDS - t0)) s" >&2
    awk -v n="$n" -v per="$per" -v tool="$tool" -v tag="$tag" '
        FNR == NR { one[$1] = $2; next }
        { two[$1] = $2 }
        END {
            ops = n * per
            if (tool == "callgrind") {
                total = (two["Ir"] - one["Ir"]) / ops
                out = sprintf("%.1f\tIr(N)=%s Ir(2N)=%s", total, one["Ir"], two["Ir"])
            } else {
                for (s in one) if (!(s in two)) two[s] = 0
                named = 0; names = 0; detail = ""
                for (s in two) {
                    if (s == "ALL") continue
                    d = (two[s] - one[s]) / ops
                    named += d; names++
                    if (d >= 0.005) detail = detail sprintf("%s %.2f, ", s, d)
                }
                total = ("ALL" in two) ? (two["ALL"] - one["ALL"]) / ops : named
                if (names == 0) detail = "(the total alone: TP_NAMED is empty)"
                else if (total - named >= 0.005 || named - total >= 0.005)
                    detail = detail sprintf("other %.2f, ", total - named) # < 0: fewer at 2N
                sub(/, $/, "", detail)
                out = sprintf("%.2f\t%s", total, detail)
            }
            if (total < 0) {
                printf "  %s: %s: fewer with 2N than with N; what varies with timing outweighs N operations: raise N\n", \
                    tag, tool > "/dev/stderr"
                exit 1
            }
            print out
        }' <(echo "$one") <(echo "$two")
}

# selfcost FILE: "Ir file:function" for every entry of a callgrind output,
# paths shortened, the same key summed.
selfcost() {
    callgrind_annotate --inclusive=no --threshold=100 --auto=no "$1" 2>/dev/null |
        awk -v root="$ROOT/" '
            /file:function$/ { header = 1; next }
            /^-+$/ { if (header) on = 1; next }
            on && $1 ~ /^[0-9,]+$/ {
                n = $1; gsub(",", "", n)
                key = $0; sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", key)
                sub(/ \[[^]]*\]$/, "", key)
                gsub(/\/root\/.cargo\/registry\/src\/[^\/]*\//, "", key)
                gsub(/\/rustc\/[0-9a-f]*\/library\//, "", key)
                gsub(root, "", key)
                sum[key] += n
            }
            END { for (k in sum) print sum[k], k }'
}

# selfcost_top TAG N PER TOP: the TOP functions by self cost per operation,
# (Ir(2N) - Ir(N)) / (N x PER), from the callgrind runs of two_point TAG.
selfcost_top() {
    local tag=$1 n=$2 per=$3 top=$4
    awk -v ops=$((n * per)) '
        NR == FNR { k = $0; sub(/^[0-9]+ /, "", k); one[k] = $1; next }
        { k = $0; sub(/^[0-9]+ /, "", k); printf "%8.1f  %s\n", ($1 - one[k]) / ops, k }
    ' <(selfcost "$(tp_file "$tag" "$n" callgrind)") <(selfcost "$(tp_file "$tag" $((2 * n)) callgrind)") |
        sort -rn | awk -v top="$top" 'NR <= top' # not head: no SIGPIPE under pipefail
}

# each_server FN NAME...: runs `FN NAME` for every NAME, COUNT_JOBS of them
# at once (default 1: one after another), and prints each one's output, in
# NAME order, as soon as it and those before it are done; fails if one
# failed. Two at once on two CPUs halve the time of the counts; what they
# count moves only where it depends on timing (how many events one
# epoll_wait returns, how many reads a 16 KiB message takes).
each_server() {
    local fn=$1 name dir rc=0 pids=() queued=()
    shift
    mkdir -p "$TP_DIR"
    dir=$(mktemp -d "$TP_DIR/each.XXXXXX")
    for name; do
        "$fn" "$name" >"$dir/$name" &
        pids+=($!) queued+=("$name")
        while ((${#pids[@]} >= ${COUNT_JOBS:-1})) || { [[ $name == "${!#}" ]] && ((${#pids[@]})); }; do
            wait "${pids[0]}" || rc=1
            cat "$dir/${queued[0]}"
            pids=("${pids[@]:1}") queued=("${queued[@]:1}")
        done
    done
    rm -rf "$dir"
    return "$rc"
}
