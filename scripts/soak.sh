#!/usr/bin/env bash
# The long chaos soak, on one machine, 127.0.0.1 only:
#
#   scripts/soak.sh              # 300 s, 1000 chaos clients
#   scripts/soak.sh 120 1000     # SECS CONNS
#   SEED=3 CHECKERS=16 scripts/soak.sh 60 500
#
# Starts `edgechat serve` (release build) with a plain and a TLS listener
# and short deadlines (idle 3 s, unfinished line 2 s, handshake 2 s,
# linger 3 s), a 32 KiB output limit and --max-clients a little under
# CONNS, so every deadline and limit is reached; then runs
# `edgechat bench --mode chaos` against it (src/bench/chaos.rs says what
# the clients do and what is checked) while SIGHUP and SIGUSR1 arrive
# every 10 s, prints its summary, and stops the server with SIGTERM, which
# must end it cleanly (exit 0). Exits non-zero if the soak or the server's
# exit failed. Output in target/measure/soak/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SECS=${1:-300}
CONNS=${2:-1000}
SEED=${SEED:-1}
CHECKERS=${CHECKERS:-8}
MAX_CLIENTS=$((CONNS * 9 / 10 + CHECKERS + 10))
OUT=$ROOT/target/measure/soak

ulimit -n "$(ulimit -Hn)" # a descriptor per client on both sides
(cd "$ROOT" && cargo build --release --bin edgechat --quiet)
mkdir -p "$OUT"

start_server "$OUT/server.log" "$OUT/server.pid" "${PIDWRAP[@]}" "$OUT/server.pid" \
    "$REL/edgechat" serve --tcp 127.0.0.1:0 --tls 127.0.0.1:0 \
    --cert "$ROOT/certs/server.crt" --key "$ROOT/certs/server.key" \
    --idle-timeout 3 --line-timeout 2 --handshake-timeout 2 --linger-timeout 3 \
    --max-output 32768 --max-clients "$MAX_CLIENTS"
TLS_ADDR=$(grep -m 1 -o 'listening on tls://[0-9.:]*' "$OUT/server.log")
TLS_ADDR=${TLS_ADDR#listening on tls://}

echo "soak: $SECS s, $CONNS chaos clients, $CHECKERS checkers, seed $SEED, against pid $SERVER_PID" \
    "(tcp://$ADDR, tls://$TLS_ADDR, --max-clients $MAX_CLIENTS); $(nproc) cores, load$(uptime | sed 's/.*load average//')"
# Signals all along: a certificate reload (SIGHUP) and a stats line
# (SIGUSR1) every 10 s, in the middle of everything else.
(
    while sleep 5; do
        kill -HUP "$SERVER_PID" 2>/dev/null || break
        sleep 5
        kill -USR1 "$SERVER_PID" 2>/dev/null || break
    done
) &
SIGNALLER=$!
STARTED+=("$SIGNALLER")
status=0
"$REL/edgechat" bench --mode chaos --addr "$ADDR" --tls-addr "$TLS_ADDR" \
    --ca "$ROOT/certs/ca.crt" --conns "$CONNS" --checkers "$CHECKERS" \
    --secs "$SECS" --seed "$SEED" --server-pid "$SERVER_PID" |
    tee "$OUT/soak.txt" || status=$?

kill "$SIGNALLER"
wait "$SIGNALLER" 2>/dev/null || true
kill -TERM "$SERVER_PID"
server_status=0
wait "$LEADER" || server_status=$?
echo "server: exit status $server_status after SIGTERM;" \
    "$(grep -c 'SIGHUP: certificate reloaded from /' "$OUT/server.log" || true) certificate reloads," \
    "$(grep -c ' WARN ' "$OUT/server.log" || true) warnings," \
    "$(grep -c ' ERROR ' "$OUT/server.log" || true) errors in $OUT/server.log"
if ((status != 0 || server_status != 0)); then
    exit 1
fi
