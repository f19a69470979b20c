#!/usr/bin/env bash
# User-space instructions per echoed message, counted exactly by callgrind,
# for edgechat and its peers (tokio, mio, and the blocking floor).
#
#   scripts/callgrind.sh                  # N=20000 CONNS=50 SIZE=64
#   N=50000 CONNS=1 SERVERS="edgechat mio" scripts/callgrind.sh
#   N=1000 LOAD="--mode stream --conns 1 --size 16384 --depth 4" scripts/callgrind.sh
#
# Each server runs under `valgrind --tool=callgrind` on a free 127.0.0.1
# port; the driver sends exactly N messages (examples/pingpong_driver.rs
# with CONNS and SIZE, or `edgechat bench --count N` with the flags in
# LOAD), then SIGTERM ends the server (callgrind writes its counts on a
# fatal signal too, so the peers need no exit path of their own). The same
# again with 2N messages, and
#
#   Ir per message = (Ir(2N) - Ir(N)) / N
#
# so start-up, accepting, closing and shutdown cancel out (two_point in
# scripts/lib.sh). Under callgrind the server runs some 50x slower than the
# driver, so with many connections one epoll_wait returns most of them: the
# figure is the per-message cost with the wakeup shared. CONNS=1 gives one
# wakeup per message. A server whose work per message depends on timing
# varies from run to run (mio's read until WouldBlock finds either the next
# message or EAGAIN; a 16 KiB message arrives in one read or in several);
# edgechat and tokio repeat pingpong to within one instruction.
#
# COUNT_JOBS=2 counts two servers at once (scripts/lib.sh each_server).
# Outputs stay in target/measure/callgrind/ for callgrind_annotate. At the
# end, edgechat's own cost per message is split by file:function the same way
# (callgrind_annotate --inclusive=no of both runs, differenced); TOP=0 skips.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOP=${TOP:-15}
LOAD=${LOAD:-}
TP_DIR=$ROOT/target/measure/callgrind
command -v valgrind >/dev/null || {
    echo "valgrind not found (apt-get install valgrind)" >&2
    exit 1
}
build

pick_driver

# count NAME: the table line of server NAME.
count() {
    local line one two
    server_argv "$1" || return 1
    line=$(two_point callgrind "$1" "$N" 1 "${DRIVER[@]}") || return 1
    one=$(sed -E 's/.*Ir\(N\)=([0-9]+).*/\1/' <<<"$line")
    two=$(sed -E 's/.*Ir\(2N\)=([0-9]+).*/\1/' <<<"$line")
    printf '%-10s %14s %14s %12.1f\n' "$1" "$one" "$two" "${line%%$'\t'*}"
}

printf '%-10s %14s %14s %12s\n' server "Ir(N=$N)" "Ir(2N)" "Ir/msg"
# shellcheck disable=SC2086  # a list of names
each_server count $SERVERS
echo "($WHAT; user-space instructions of the server process only)"

if ((TOP > 0)) && [[ " $SERVERS " == *" edgechat "* ]]; then
    echo
    echo "edgechat, self cost per message by file:function, (Ir(2N) - Ir(N)) / N:"
    selfcost_top edgechat "$N" 1 "$TOP"
fi
