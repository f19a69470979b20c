#!/usr/bin/env bash
# User-space instructions per echoed message, counted exactly by callgrind,
# for edgechat and its peers (tokio, mio, and the blocking floor).
#
#   scripts/callgrind.sh                  # N=20000 CONNS=50 SIZE=64
#   N=50000 CONNS=1 SERVERS="edgechat mio" scripts/callgrind.sh
#
# Each server runs under `valgrind --tool=callgrind` on a free 127.0.0.1
# port; the driver sends exactly N pingpong messages, then SIGTERM ends the
# server (callgrind writes its counts on a fatal signal too, so the peers
# need no exit path of their own). The same again with 2N messages, and
#
#   Ir per message = (Ir(2N) - Ir(N)) / N
#
# so start-up, accepting, closing and shutdown cancel out. Under callgrind
# the server runs some 50x slower than the driver, so with many connections
# one epoll_wait returns most of them: the figure is the per-message cost
# with the wakeup shared. CONNS=1 gives one wakeup per message. A server
# whose work per message depends on timing varies from run to run (mio's
# read until WouldBlock finds either the next message or EAGAIN); edgechat
# and tokio repeat to within one instruction.
#
# Outputs stay in target/measure/callgrind/ for callgrind_annotate. At the
# end, edgechat's own cost per message is split by file:function the same way
# (callgrind_annotate --inclusive=no of both runs, differenced); TOP=0 skips.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOP=${TOP:-15}
OUT=$ROOT/target/measure/callgrind
command -v valgrind >/dev/null || {
    echo "valgrind not found (apt-get install valgrind)" >&2
    exit 1
}
build
mkdir -p "$OUT"

# ir NAME COUNT: total Ir of one run of server NAME carrying COUNT messages.
ir() {
    local name=$1 count=$2 file="$OUT/$1.$2.out"
    server_argv "$name"
    rm -f "$file"
    start_server "$OUT/$name.$count.log" "$OUT/$name.pid" \
        "${PIDWRAP[@]}" "$OUT/$name.pid" \
        valgrind --tool=callgrind --callgrind-out-file="$file" "${SERVER_ARGV[@]}"
    drive "$count" "$OUT/$name.$count.driver.log"
    stop_server
    awk '/^totals:/ { print $2; found = 1 } END { exit !found }' "$file"
}

printf '%-10s %14s %14s %12s\n' server "Ir(N=$N)" "Ir(2N)" "Ir/msg"
for name in $SERVERS; do
    one=$(ir "$name" "$N")
    two=$(ir "$name" $((2 * N)))
    printf '%-10s %14s %14s %12.1f\n' "$name" "$one" "$two" \
        "$(awk -v a="$one" -v b="$two" -v n="$N" 'BEGIN { print (b - a) / n }')"
done
echo "(CONNS=$CONNS SIZE=$SIZE; user-space instructions of the server process only)"

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

if ((TOP > 0)) && [[ " $SERVERS " == *" edgechat "* ]]; then
    echo
    echo "edgechat, self cost per message by file:function, (Ir(2N) - Ir(N)) / N:"
    selfcost "$OUT/edgechat.$N.out" >"$OUT/edgechat.$N.self"
    selfcost "$OUT/edgechat.$((2 * N)).out" >"$OUT/edgechat.$((2 * N)).self"
    awk -v n="$N" '
        NR == FNR { k = $0; sub(/^[0-9]+ /, "", k); one[k] = $1; next }
        { k = $0; sub(/^[0-9]+ /, "", k); printf "%8.1f  %s\n", ($1 - one[k]) / n, k }
    ' "$OUT/edgechat.$N.self" "$OUT/edgechat.$((2 * N)).self" |
        sort -rn | awk -v top="$TOP" 'NR <= top' # not head: no SIGPIPE under pipefail
fi
