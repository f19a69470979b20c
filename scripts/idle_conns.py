#!/usr/bin/env python3
"""Server RSS per idle echo connection.

    scripts/idle_conns.py ADDR SERVER_PID [COUNT=10000]

Reads the server's VmRSS (/proc/PID/status), opens COUNT TCP connections to
ADDR (an echo server on 127.0.0.1) and waits until the server holds them all
(its open descriptors, /proc/PID/fd), reads VmRSS again; then sends one byte
on each connection and waits for it to come back (every connection served
once, then idle), and reads VmRSS a third time. Each read waits for the
figure to settle. Prints one JSON line:

    {"conns": 10000, "rss0_kib": ..., "rss_connected_kib": ...,
     "rss_echoed_kib": ..., "bytes_per_conn": ..., "bytes_per_conn_silent": ...}

bytes_per_conn = (rss_echoed - rss0) * 1024 / COUNT (the headline: idle
after one echo); bytes_per_conn_silent the same for connections that never
sent a byte. Then closes everything. Exits 1 if a connection fails or an
echo is wrong.
"""

import json
import os
import resource
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wait_fds(pid, want):
    """Waits (at most ~30 s) until the server has `want` descriptors open."""
    for _ in range(300):
        if open_fds(pid) >= want:
            return
        time.sleep(0.1)
    sys.exit(f"server holds {open_fds(pid)} descriptors, expected {want}")


def settled_rss(pid):
    """VmRSS once two reads 0.2 s apart agree (at most ~3 s)."""
    last = rss_kib(pid)
    for _ in range(15):
        time.sleep(0.2)
        now = rss_kib(pid)
        if now == last:
            break
        last = now
    return last


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    host, port = sys.argv[1].rsplit(":", 1)
    pid = int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) == 4 else 10000
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < count + 64:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} is below {count + 64}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    rss0 = settled_rss(pid)
    fds0 = open_fds(pid)
    socks = []
    try:
        for _ in range(count):
            s = socket.create_connection((host, int(port)), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        wait_fds(pid, fds0 + count)
        rss_connected = settled_rss(pid)
        for s in socks:
            s.sendall(b"x")
        for s in socks:
            if s.recv(1) != b"x":
                sys.exit("wrong or missing echo")
        rss_echoed = settled_rss(pid)
    finally:
        for s in socks:
            s.close()
    print(
        json.dumps(
            {
                "conns": count,
                "rss0_kib": rss0,
                "rss_connected_kib": rss_connected,
                "rss_echoed_kib": rss_echoed,
                "bytes_per_conn": round((rss_echoed - rss0) * 1024 / count, 1),
                "bytes_per_conn_silent": round((rss_connected - rss0) * 1024 / count, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
