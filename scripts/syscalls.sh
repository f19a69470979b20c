#!/usr/bin/env bash
# Syscalls per echoed message for edgechat and its peers (tokio, mio, and
# the blocking floor), counted by the kernel's syscall tracepoints.
#
#   scripts/syscalls.sh                   # N=20000 CONNS=50 SIZE=64
#   TOOL=strace CONNS=1 scripts/syscalls.sh
#
# TOOL=perf (the default when `perf stat -e raw_syscalls:sys_enter` works)
# counts every syscall with `perf stat -e raw_syscalls:sys_enter`, and the
# ones an echo server makes by name (`syscalls:sys_enter_NAME`, the rest is
# "other"); it barely slows the server. TOOL=strace uses `strace -c -f`, which slows every syscall down
# and so changes how many events one epoll_wait returns. Both follow every
# thread. The driver sends exactly N pingpong messages, SIGTERM ends the
# server; the same again with 2N, and
#
#   syscalls per message = (S(2N) - S(N)) / N
#
# so start-up, accepting, closing and shutdown cancel out. The breakdown
# lists each syscall at 0.01 per message or more. With many connections the
# epoll_wait share depends on timing; CONNS=1 shows one wakeup per message.
# Raw counts stay in target/measure/syscalls/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

OUT=$ROOT/target/measure/syscalls
if [[ -z ${TOOL:-} ]]; then
    TOOL=strace
    if perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
        TOOL=perf
    fi
fi
command -v "$TOOL" >/dev/null || {
    echo "$TOOL not found (apt-get install ${TOOL/perf/linux-perf})" >&2
    exit 1
}
build
mkdir -p "$OUT"

# Named one by one: enabling all ~360 tracepoints costs ~15 s per run.
NAMED="read write recvfrom sendto recvmsg sendmsg readv writev epoll_wait
    epoll_pwait epoll_pwait2 epoll_ctl poll ppoll futex sched_yield accept4
    setsockopt shutdown close mmap munmap mprotect madvise brk rt_sigprocmask"
EVENTS=raw_syscalls:sys_enter
for s in $NAMED; do
    EVENTS+=,syscalls:sys_enter_$s
done

# counts NAME COUNT: "syscall calls" lines for one run carrying COUNT messages.
counts() {
    local name=$1 count=$2 file="$OUT/$1.$2.$TOOL" pidfile="$OUT/$1.pid"
    server_argv "$name"
    rm -f "$file"
    case $TOOL in
        perf) start_server "$OUT/$name.$count.log" "$pidfile" \
            perf stat -x, -o "$file" -e "$EVENTS" -- \
            "${PIDWRAP[@]}" "$pidfile" "${SERVER_ARGV[@]}" ;;
        strace) start_server "$OUT/$name.$count.log" "$pidfile" \
            strace -f -c -o "$file" -- \
            "${PIDWRAP[@]}" "$pidfile" "${SERVER_ARGV[@]}" ;;
        *)
            echo "TOOL must be perf or strace" >&2
            return 1
            ;;
    esac
    drive "$count" "$OUT/$name.$count.driver.log"
    stop_server
    case $TOOL in
        perf) awk -F, '$1 ~ /^[0-9]+$/ && $3 ~ /sys_enter/ {
                if ($3 == "raw_syscalls:sys_enter") $3 = "ALL"
                sub(/.*sys_enter_/, "", $3); print $3, $1 }' "$file" ;;
        strace) awk '$NF != "total" && $(NF-1) ~ /^[0-9]+$/ && NF >= 5 {
                print $NF, ($(NF-2) ~ /^[0-9]+$/ && NF == 6) ? $(NF-2) : $(NF-1) }' "$file" ;;
    esac
}

printf '%-10s %12s   %s\n' server "sys/msg" "per message, by syscall (CONNS=$CONNS SIZE=$SIZE, $TOOL)"
for name in $SERVERS; do
    counts "$name" "$N" >"$OUT/$name.$N.counts"
    counts "$name" $((2 * N)) >"$OUT/$name.$((2 * N)).counts"
    awk -v n="$N" -v name="$name" '
        NR == FNR { one[$1] = $2; next }
        { two[$1] = $2 }
        END {
            for (s in one) if (!(s in two)) two[s] = 0
            named = 0; detail = ""
            for (s in two) {
                if (s == "ALL") continue
                d = (two[s] - one[s]) / n
                named += d
                if (d >= 0.005) detail = detail sprintf("%s %.2f, ", s, d)
            }
            total = ("ALL" in two) ? (two["ALL"] - one["ALL"]) / n : named
            if (total - named >= 0.005) detail = detail sprintf("other %.2f, ", total - named)
            sub(/, $/, "", detail)
            printf "%-10s %12.2f   %s\n", name, total, detail
        }' "$OUT/$name.$N.counts" "$OUT/$name.$((2 * N)).counts"
done
