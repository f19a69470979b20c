#!/usr/bin/env bash
# Syscalls per echoed message for edgechat and its peers (tokio, mio, and
# the blocking floor), counted by the kernel's syscall tracepoints.
#
#   scripts/syscalls.sh                   # N=20000 CONNS=50 SIZE=64
#   TOOL=strace CONNS=1 scripts/syscalls.sh
#   N=5000 LOAD="--mode stream --conns 1 --size 16384 --depth 4" scripts/syscalls.sh
#
# TOOL=perf (the default when `perf stat -e raw_syscalls:sys_enter` works)
# counts every syscall with `perf stat -e raw_syscalls:sys_enter`, and the
# ones an echo server makes by name (`syscalls:sys_enter_NAME`, the rest is
# "other"); it barely slows the server. TOOL=strace uses `strace -c -f`,
# which slows every syscall down and so changes how many events one
# epoll_wait returns. Both follow every thread. The driver sends exactly N
# messages (examples/pingpong_driver.rs with CONNS and SIZE, or `edgechat
# bench --count N` with the flags in LOAD), SIGTERM ends the server; the
# same again with 2N, and
#
#   syscalls per message = (S(2N) - S(N)) / N
#
# so start-up, accepting, closing and shutdown cancel out (two_point in
# scripts/lib.sh). The breakdown lists each syscall at 0.01 per message or
# more. With many connections the epoll_wait share depends on timing;
# CONNS=1 shows one wakeup per message. COUNT_JOBS=2 counts two servers at
# once (scripts/lib.sh each_server). Raw counts stay in
# target/measure/syscalls/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LOAD=${LOAD:-}
TP_DIR=$ROOT/target/measure/syscalls
TOOL=$(tp_tool "${TOOL:-syscalls}")
command -v "$TOOL" >/dev/null || {
    echo "$TOOL not found (apt-get install ${TOOL/perf/linux-perf})" >&2
    exit 1
}
build

pick_driver

# count NAME: the table line of server NAME.
count() {
    local line
    server_argv "$1" || return 1
    line=$(two_point "$TOOL" "$1" "$N" 1 "${DRIVER[@]}") || return 1
    printf '%-10s %12s   %s\n' "$1" "${line%%$'\t'*}" "${line#*$'\t'}"
}

printf '%-10s %12s   %s\n' server "sys/msg" "per message, by syscall ($WHAT, $TOOL)"
# shellcheck disable=SC2086  # a list of names
each_server count $SERVERS
