#!/usr/bin/env bash
# Shows the socket tutorial's syscall order in a real server run:
# socket → setsockopt → bind → listen → epoll_create1 → epoll_ctl →
# epoll_wait → accept4.
#
# Usage: scripts/trace-syscalls.sh [path/to/edgechat]
#
# Starts `edgechat serve --mode echo --tcp 127.0.0.1:0` under strace, connects
# once, stops the server with SIGTERM, and prints the traced syscall names in
# the order each first appeared, one per line.
set -euo pipefail

bin=${1:-target/debug/edgechat}
calls=socket,setsockopt,bind,listen,epoll_create1,epoll_ctl,epoll_wait,accept4

command -v strace >/dev/null || {
    echo "trace-syscalls: strace not found; install it (apt-get install -y strace)" >&2
    exit 2
}
[[ -x $bin ]] || {
    echo "trace-syscalls: $bin is not an executable" >&2
    exit 2
}

dir=$(mktemp -d)
tracer=
cleanup() {
    if [[ -n $tracer ]] && kill -0 "$tracer" 2>/dev/null; then
        kill -KILL "$tracer" 2>/dev/null || true
        wait "$tracer" 2>/dev/null || true
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

# Waits up to 10 s for a command to succeed.
within_10s() {
    for _ in $(seq 100); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

strace -f -e trace=$calls -o "$dir/trace" \
    "$bin" serve --mode echo --tcp 127.0.0.1:0 2>"$dir/log" &
tracer=$!

if ! within_10s grep -q 'listening on tcp://' "$dir/log"; then
    echo "trace-syscalls: the server did not start:" >&2
    cat "$dir/log" >&2
    exit 1
fi
port=$(sed -n 's|.*listening on tcp://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$dir/log" | head -n1)

# One client: connect, send a line, close.
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'hello\n' >&3
exec 3>&-
within_10s grep -q '^[0-9]* *accept4(.*) = [0-9]' "$dir/trace" || {
    echo "trace-syscalls: the server never accepted the connection" >&2
    exit 1
}

# The server is strace's child; SIGTERM asks it for a graceful shutdown.
server=$(awk '{print $1}' "/proc/$tracer/task/$tracer/children" 2>/dev/null)
[[ -n $server ]] || server=$(awk 'NR == 1 {print $1}' "$dir/trace")
kill -TERM "$server"
status=0
wait "$tracer" || status=$?
tracer=
if [[ $status -ne 0 ]]; then
    echo "trace-syscalls: the server exited with status $status:" >&2
    cat "$dir/log" >&2
    exit 1
fi

# "PID name(args) = result": print each name once, in order of first use.
sed -n 's/^[0-9]* *\([a-z_0-9]*\)(.*/\1/p' "$dir/trace" | awk '!seen[$0]++'
