#!/usr/bin/env bash
# Echo, side by side: edgechat against the tokio and mio peers and the
# blocking floor (a thread per connection, one read + one write), in one run,
# with each figure beside its target.
#
#   scripts/echo-compare.sh            # 3 rounds x 4 s per load, ~7 minutes
#   scripts/echo-compare.sh --quick    # 1 round x 1 s, smaller counts, ~1 minute
#
# Release builds. Each server starts on a free 127.0.0.1 port pinned to CPU 0
# (`taskset -c 0`); the load, `edgechat bench --server-pid PID --json`, runs
# pinned to CPU 1. The servers take turns (edgechat, tokio, mio, blocking,
# edgechat, tokio, ...), each round on a fresh server process, and every
# figure is the median over the rounds. Per server and round:
#
#   pingpong 64 B x 50 conns     msgs/s, server CPU us/msg, p50/p99 latency
#   pingpong 64 B x 1 conn       server CPU us/msg (here the blocking floor
#                                really is one recv + one send per wakeup)
#   stream 16 KiB x 1 (depth 4)  MB/s, server CPU us per MB
#   stream 16 KiB x 50 (depth 4) aggregate MB/s, p99 latency
#
# Then, once per server: syscalls per message (scripts/syscalls.sh) and
# user-space instructions per message (scripts/callgrind.sh), each a
# two-point difference over exactly N and 2N messages (scripts/lib.sh
# two_point), for pingpong 64 B x 50 (N) and for stream 16 KiB x 1, depth 4
# (ST_N); and server RSS per idle connection with 10 000 connections open
# (scripts/idle_conns.py; not for the blocking floor, a thread each).
#
# Prints one markdown table (figure, edgechat, tokio, mio, blocking floor,
# ratios edgechat/tokio, edgechat/mio and edgechat/floor) and the goals met or missed,
# and writes both to target/bench/echo-compare.md. Raw figures stay in
# target/bench/echo-compare/. The machine may be shared: the load average
# goes under the table, and two rows give the share of the time the server
# was runnable but waiting for CPU 0 (/proc/PID/task/*/schedstat), which is
# what other work does to throughput and tail latency.
#
# Environment: ROUNDS, SECS, WARMUP, N (pingpong callgrind/syscalls; 20000,
# or 5000 with --quick), ST_N (stream callgrind/syscalls; 5000, or 1000 with
# --quick; 0 skips them), COUNT_SERVERS (the servers counted, all four by
# default), IDLE (idle connections, 10000) override the defaults.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# shellcheck source=scripts/quick.sh
source "$(dirname "${BASH_SOURCE[0]}")/quick.sh"
parse_quick "$@"
if ((QUICK)); then
    ROUNDS=${ROUNDS:-1} SECS=${SECS:-1} WARMUP=${WARMUP:-0.2} N=5000 ST_N=${ST_N:-1000}
else
    ROUNDS=${ROUNDS:-3} SECS=${SECS:-4} WARMUP=${WARMUP:-0.5}
fi
ST_N=${ST_N:-5000}
COUNT_SERVERS=${COUNT_SERVERS:-"${NAMES[*]}"}
ST1="--mode stream --conns 1 --size 16384 --depth 4"
IDLE=${IDLE:-10000}
NAMES=(edgechat tokio mio blocking)

for tool in taskset python3 valgrind; do
    command -v "$tool" >/dev/null || {
        echo "$tool not found" >&2
        exit 1
    }
done
if (($(nproc) < 2)); then
    echo "needs two CPUs (server on CPU 0, load on CPU 1)" >&2
    exit 1
fi

OUT=$ROOT/target/bench/echo-compare
MD=$ROOT/target/bench/echo-compare.md
mkdir -p "$OUT"
RUNS=$OUT/runs.tsv
: >"$RUNS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS

echo "building (release)..." >&2
build

# Load name and `edgechat bench` flags, in the order each server runs them.
LOADS=(
    "pp50 --mode pingpong --conns 50 --size 64"
    "pp1 --mode pingpong --conns 1 --size 64"
    "st1 --mode stream --conns 1 --size 16384 --depth 4"
    "st50 --mode stream --conns 50 --size 16384 --depth 4"
)

# pinned NAME: starts server NAME on CPU 0 (sets SERVER_PID and ADDR).
pinned() {
    server_argv "$1"
    start_server "$OUT/$1.log" "$OUT/$1.pid" \
        taskset -c 0 "${PIDWRAP[@]}" "$OUT/$1.pid" "${SERVER_ARGV[@]}"
}

# bench NAME ROUND LOAD FLAGS...: one measured window, appended to $RUNS
# with the share of the run the server spent waiting for its CPU (the other
# work on a shared machine).
bench() {
    local name=$1 round=$2 load=$3 json="$OUT/$1.$2.$3.json" t0 w0 wait_pct
    shift 3
    t0=$(date +%s%N)
    w0=$(runq_ns "$SERVER_PID")
    if ! timeout --foreground 120 taskset -c 1 "$REL/edgechat" bench --addr "$ADDR" "$@" \
        --secs "$SECS" --warmup "$WARMUP" --server-pid "$SERVER_PID" --json \
        >"$json" 2>"$OUT/$name.$round.$load.err"; then
        echo "warning: $name round $round $load: bench failed:" >&2
        cat "$OUT/$name.$round.$load.err" >&2
    fi
    wait_pct=$(awk -v w="$(($(runq_ns "$SERVER_PID") - w0))" -v t="$(($(date +%s%N) - t0))" \
        'BEGIN { printf "%.1f", 100 * w / t }')
    if [[ -s $json ]]; then
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$load" "$wait_pct" \
            "$(tail -n 1 "$json")" >>"$RUNS"
    fi
}

rounds
LOAD_MID=$(cut -d' ' -f1-3 /proc/loadavg)

echo "syscalls per message (scripts/syscalls.sh)..." >&2
rm -f "$OUT"/syscalls*.txt "$OUT"/callgrind*.txt
N=$N CONNS=50 SIZE=64 SERVERS=$COUNT_SERVERS "$ROOT/scripts/syscalls.sh" >"$OUT/syscalls.txt"
((ST_N == 0)) ||
    N=$ST_N LOAD=$ST1 SERVERS=$COUNT_SERVERS "$ROOT/scripts/syscalls.sh" >"$OUT/syscalls-st1.txt"
echo "instructions per message (scripts/callgrind.sh)..." >&2
N=$N CONNS=50 SIZE=64 SERVERS=$COUNT_SERVERS TOP=15 "$ROOT/scripts/callgrind.sh" >"$OUT/callgrind.txt"
((ST_N == 0)) ||
    N=$ST_N LOAD=$ST1 SERVERS=$COUNT_SERVERS TOP=0 "$ROOT/scripts/callgrind.sh" >"$OUT/callgrind-st1.txt"

for name in edgechat tokio mio; do
    echo "RSS with $IDLE idle connections: $name" >&2
    pinned "$name"
    timeout --foreground 120 taskset -c 1 python3 "$ROOT/scripts/idle_conns.py" \
        "$ADDR" "$SERVER_PID" "$IDLE" >"$OUT/$name.idle.json"
    stop_server
done
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$OUT" "$ROUNDS" "$SECS" "$N" "$ST_N" "$IDLE" "$LOAD_START" "$LOAD_MID" "$LOAD_END" \
    "$((SECONDS - T0))" "$(cd "$ROOT" && git rev-parse --short HEAD)" >"$MD" <<'PY'
import json, os, statistics, sys

out, rounds, secs, n, st_n, idle, load0, load1, load2, took, commit = sys.argv[1:]
names = ["edgechat", "tokio", "mio", "blocking"]

runs = {}
errors = []
with open(os.path.join(out, "runs.tsv")) as f:
    for line in f:
        name, rnd, load, wait_pct, js = line.rstrip("\n").split("\t", 4)
        r = json.loads(js)
        r["runq_pct"] = float(wait_pct)
        runs.setdefault((name, load), []).append(r)
        if r.get("errors"):
            errors.append(f"{name} round {rnd} {load}: {r['errors']} errors")

def med(load, key):
    def get(name):
        vals = [fn(r) for r in runs.get((name, load), [])]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None
    fn = key if callable(key) else (lambda r: r.get(key))
    return get

def fmt(v, places):
    return "–" if v is None else f"{v:,.{places}f}".replace(",", " ")

def per_mb(r):
    if r.get("server_cpu_us") is None or not r.get("bytes"):
        return None
    return r["server_cpu_us"] / (r["bytes"] / 1e6)

def table_file(path):
    """First two columns of scripts/syscalls.sh or callgrind.sh output."""
    vals = {}
    try:
        with open(os.path.join(out, path)) as f:
            for line in f:
                parts = line.split()
                if parts and parts[0] in names:
                    vals[parts[0]] = float(parts[-1] if "callgrind" in path else parts[1])
    except (OSError, ValueError):
        pass
    return lambda name: vals.get(name)

def idle_rss(name):
    try:
        with open(os.path.join(out, f"{name}.idle.json")) as f:
            return json.load(f)["bytes_per_conn"]
    except (OSError, ValueError, KeyError):
        return None

sys_per_msg = table_file("syscalls.txt")
ir_per_msg = table_file("callgrind.txt")
st_sys_per_msg = table_file("syscalls-st1.txt")
st_ir_per_msg = table_file("callgrind-st1.txt")
def p99_ms(r):
    return r["p99_us"] / 1000

rows = [
    ("pingpong 64 B × 50: msgs/s", med("pp50", "msgs_per_sec"), 0),
    ("pingpong 64 B × 50: server CPU µs/msg", med("pp50", "server_cpu_us_per_msg"), 2),
    ("pingpong 64 B × 50: p50 µs", med("pp50", "p50_us"), 0),
    ("pingpong 64 B × 50: p99 µs", med("pp50", "p99_us"), 0),
    ("pingpong 64 B × 50: generator CPU % of a core", med("pp50", "gen_cpu_pct"), 0),
    ("pingpong 64 B × 50: syscalls/msg", sys_per_msg, 2),
    ("pingpong 64 B × 50: user-space instructions/msg", ir_per_msg, 1),
    ("pingpong 64 B × 1: server CPU µs/msg", med("pp1", "server_cpu_us_per_msg"), 2),
    ("stream 16 KiB × 1 (depth 4): MB/s", med("st1", "mb_per_sec"), 0),
    ("stream 16 KiB × 1 (depth 4): server CPU µs/MB", med("st1", per_mb), 0),
    ("stream 16 KiB × 1 (depth 4): server CPU µs/msg", med("st1", "server_cpu_us_per_msg"), 2),
    ("stream 16 KiB × 1 (depth 4): syscalls/msg", st_sys_per_msg, 2),
    ("stream 16 KiB × 1 (depth 4): user-space instructions/msg", st_ir_per_msg, 1),
    ("stream 16 KiB × 50 (depth 4): aggregate MB/s", med("st50", "mb_per_sec"), 0),
    ("stream 16 KiB × 50 (depth 4): server CPU µs/MB", med("st50", per_mb), 0),
    ("stream 16 KiB × 50 (depth 4): p99 ms", med("st50", p99_ms), 2),
    ("stream 16 KiB × 50 (depth 4): generator CPU % of a core", med("st50", "gen_cpu_pct"), 0),
    ("RSS per idle connection, " + fmt(int(idle), 0) + " open: B", idle_rss, 0),
    ("server waiting for CPU 0 (run queue), % of the run, pingpong × 50", med("pp50", "runq_pct"), 0),
    ("server waiting for CPU 0 (run queue), % of the run, stream × 50", med("st50", "runq_pct"), 0),
]
# Rows that describe the run rather than the server: no ratios. The
# blocking floor's threads exit with their connections, taking their
# run-queue time with them, so it has no run-queue figure.
CONTEXT = ("generator CPU", "server waiting")

def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    r = a / b
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.2g}×"

values = {}
lines = [
    "| figure | edgechat | tokio | mio | blocking floor | edgechat/tokio | edgechat/mio | edgechat/floor |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
]
for label, get, places in rows:
    v = {name: get(name) for name in names}
    if label.startswith("RSS") or "run queue" in label:
        v["blocking"] = None
    values[label] = v
    ratios = ("–",) * 3 if any(c in label for c in CONTEXT) else tuple(
        ratio(v["edgechat"], v[peer]) for peer in ("tokio", "mio", "blocking"))
    lines.append(
        f"| {label} | "
        + " | ".join(fmt(v[name], places) for name in names)
        + " | " + " | ".join(ratios) + " |"
    )

def val(label_start, name):
    for label, v in values.items():
        if label.startswith(label_start):
            return v[name]
    return None

def goal(text, ok, figure):
    mark = "–" if ok is None else ("met" if ok else "MISSED")
    return f"- {mark}: {text} ({figure})"

def cmp(a, b, f):
    return None if a is None or b is None else f(a, b)

cpu_o, cpu_t, cpu_m, cpu_b = (val("pingpong 64 B × 50: server CPU", k) for k in ("edgechat", "tokio", "mio", "blocking"))
sysc = val("pingpong 64 B × 50: syscalls", "edgechat")
s1_o, s1_t, s1_b = (val("stream 16 KiB × 1 (depth 4): MB/s", k) for k in ("edgechat", "tokio", "blocking"))
s50_o, s50_t = (val("stream 16 KiB × 50 (depth 4): aggregate", k) for k in ("edgechat", "tokio"))
p99 = val("stream 16 KiB × 50 (depth 4): p99", "edgechat")
rss = val("RSS", "edgechat")
ir_o, ir_t = (val("pingpong 64 B × 50: user-space", k) for k in ("edgechat", "tokio"))
goals = [
    goal("pingpong 64 B × 50 server CPU/msg ≤ 0.97× tokio", cmp(cpu_o, cpu_t, lambda a, b: a <= 0.97 * b),
         f"{ratio(cpu_o, cpu_t)}: {fmt(cpu_o, 2)} vs {fmt(cpu_t, 2)} µs"),
    goal("pingpong 64 B × 50 server CPU/msg ≤ 0.97× mio", cmp(cpu_o, cpu_m, lambda a, b: a <= 0.97 * b),
         f"{ratio(cpu_o, cpu_m)}: {fmt(cpu_o, 2)} vs {fmt(cpu_m, 2)} µs"),
    goal("pingpong 64 B × 50 server CPU/msg ≤ 1.1× the blocking floor", cmp(cpu_o, cpu_b, lambda a, b: a <= 1.1 * b),
         f"{ratio(cpu_o, cpu_b)}: {fmt(cpu_o, 2)} vs {fmt(cpu_b, 2)} µs"),
    goal("≤ 2.05 syscalls per message", None if sysc is None else sysc <= 2.05, fmt(sysc, 2)),
    goal("stream 16 KiB × 1 ≥ 1.1× tokio MB/s", cmp(s1_o, s1_t, lambda a, b: a >= 1.1 * b),
         f"{ratio(s1_o, s1_t)}: {fmt(s1_o, 0)} vs {fmt(s1_t, 0)} MB/s"),
    goal("stream 16 KiB × 1 not behind the blocking loop", cmp(s1_o, s1_b, lambda a, b: a >= b),
         f"{ratio(s1_o, s1_b)}: {fmt(s1_o, 0)} vs {fmt(s1_b, 0)} MB/s"),
    goal("stream 16 KiB × 50 p99 ≤ 10 ms", None if p99 is None else p99 <= 10, f"{fmt(p99, 2)} ms"),
    goal("stream 16 KiB × 50 aggregate MB/s not behind tokio", cmp(s50_o, s50_t, lambda a, b: a >= b),
         f"{ratio(s50_o, s50_t)}: {fmt(s50_o, 0)} vs {fmt(s50_t, 0)} MB/s"),
    goal(f"≤ 256 B RSS per idle connection at {idle}", None if rss is None else rss <= 256, f"{fmt(rss, 0)} B"),
    goal("instructions per message ≤ 0.25× tokio", cmp(ir_o, ir_t, lambda a, b: a <= 0.25 * b),
         f"{ratio(ir_o, ir_t)}: {fmt(ir_o, 1)} vs {fmt(ir_t, 1)}"),
]

print("# Echo: edgechat beside tokio, mio and the blocking floor\n")
print("\n".join(lines))
print()
print(f"Medians of {rounds} interleaved rounds of {secs} s per load; server on CPU 0, "
      f"`edgechat bench` on CPU 1. Syscalls and instructions: "
      f"(count(2N) − count(N)) / N with exactly N and 2N messages, N = {n} for "
      f"pingpong 64 B × 50 and "
      + (f"{st_n} for stream 16 KiB × 1" if int(st_n) else "stream 16 KiB × 1 not counted")
      + f" (`scripts/syscalls.sh`, `scripts/callgrind.sh`, `scripts/lib.sh` two_point; "
      f"the server on CPU 0 and the driver on CPU 1 unless two servers were counted at once). RSS: (VmRSS with {idle} connections "
      f"open, each echoed once − VmRSS before) / {idle} (`scripts/idle_conns.py`). "
      f"Load average (1/5/15 min): {load0} at the start, {load1} after the timed "
      f"rounds, {load2} at the end, on {os.cpu_count()} CPUs. Commit {commit}, {took} s.")
if errors:
    print("\nRuns with echo errors: " + "; ".join(errors))
print("\n## How edgechat stands against its targets\n")
print("\n".join(goals))
PY
cat "$MD"
echo >&2
echo "written to ${MD#"$ROOT"/}; raw figures in ${OUT#"$ROOT"/}/" >&2
