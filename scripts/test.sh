#!/usr/bin/env bash
# The test suite, on a fresh Debian or Ubuntu machine as on a developer's:
# installs what the tests run besides edgechat where it is missing, then
# runs `cargo test` (arguments are passed on: scripts/test.sh --test echo_tcp).
#
#   strace                 tests/syscalls.rs
#   prlimit, flock         util-linux: tests/limits.rs, the daemon tests
#   openssl                openssl s_client interop (tests/tls_interop.rs)
#   python3                its ssl module, interop and scripts
#   systemd-analyze        systemd: tests/systemd_units.rs
#   redis-server           redis: the bench's Redis-protocol tests
#   nats-server            nats-server: the bench's NATS-protocol tests
#
# Packages are installed with apt-get only as root or through sudo; without
# either, the missing ones are listed and the tests run anyway (those that
# need them fail, naming the program).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
have strace || need+=(strace)
{ have prlimit && have flock; } || need+=(util-linux)
have openssl || need+=(openssl)
have python3 || need+=(python3)
have systemd-analyze || need+=(systemd)
have redis-server || need+=(redis-server)
have nats-server || need+=(nats-server)

if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif have sudo && sudo -n true 2>/dev/null; then
        sudo=(sudo)
    else
        sudo=(none)
    fi
    if [ "${sudo[0]:-}" = none ]; then
        echo "scripts/test.sh: missing ${need[*]}; install them as root:" >&2
        echo "  apt-get install -y ${need[*]}" >&2
    else
        echo "installing: ${need[*]}"
        export DEBIAN_FRONTEND=noninteractive
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    fi
fi

exec cargo test "$@"
