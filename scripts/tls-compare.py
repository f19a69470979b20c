"""The table of scripts/tls-compare.sh: medians of its raw runs, each
figure beside its target, markdown on stdout and `figure<TAB>ours<TAB>peer`
lines in the TSV file (empty cells for missing figures)."""

import json
import os
import statistics
import sys

(out, rounds, secs, counts_n, idle, hsconns, load0, load1, load2, took, commit,
 tsv) = sys.argv[1:]
n, st_n, hs_n, sys_scale = (int(x) for x in counts_n.split())
names = ["ours", "peer"]

runs = {}
errors = []
with open(os.path.join(out, "runs.tsv")) as f:
    for line in f:
        name, rnd, load, wait_pct, user_pct, js = line.rstrip("\n").split("\t", 5)
        r = json.loads(js)
        r["runq_pct"] = float(wait_pct)
        r["user_pct"] = None if user_pct == "nan" else float(user_pct)
        runs.setdefault((name, load), []).append(r)
        if r.get("errors"):
            errors.append(f"{name} round {rnd} {load}: {r['errors']} errors")


def med(load, key):
    fn = key if callable(key) else (lambda r: r.get(key))

    def get(name):
        vals = [fn(r) for r in runs.get((name, load), [])]
        vals = [v for v in vals if v is not None]
        return statistics.median(vals) if vals else None
    return get


def per_mb(r):
    if r.get("server_cpu_us") is None or not r.get("bytes"):
        return None
    return r["server_cpu_us"] / (r["bytes"] / 1e6)


def resumed_pct(r):
    if not r.get("handshakes"):
        return None
    return 100 * r["resumed"] / r["handshakes"]


COUNTS = {}
try:
    with open(os.path.join(out, "counts.tsv")) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 4:
                COUNTS[(parts[0], parts[1], parts[2])] = float(parts[3])
except (OSError, ValueError):
    pass


def count(load, tool):
    """Two-point count per operation (scripts/lib.sh two_point) for one load."""
    return lambda name: COUNTS.get((name, load, tool))


def idle_rss(name):
    try:
        with open(os.path.join(out, f"{name}.idle.json")) as f:
            r = json.loads(f.read().strip().splitlines()[-1])
        return r["rss_per_conn_bytes"] if not r.get("errors") else None
    except (OSError, ValueError, KeyError, IndexError):
        return None


hs = f"handshake ({hsconns} at once)"
rows = [
    ("TLS pingpong 64 B × 50: msgs/s", med("pp50", "msgs_per_sec"), 0),
    ("TLS pingpong 64 B × 50: server CPU µs/msg", med("pp50", "server_cpu_us_per_msg"), 3),
    ("TLS pingpong 64 B × 50: p99 µs", med("pp50", "p99_us"), 0),
    ("TLS pingpong 64 B × 50: server CPU in user space, %", med("pp50", "user_pct"), 0),
    ("TLS pingpong 64 B × 50: generator CPU % of a core", med("pp50", "gen_cpu_pct"), 0),
    ("TLS pingpong 64 B × 50: syscalls/msg", count("pp50", "syscalls"), 2),
    ("TLS pingpong 64 B × 50: user-space instructions/msg (callgrind)", count("pp50", "callgrind"), 0),
    ("TLS stream 16 KiB × 1 (depth 4): MB/s", med("st1", "mb_per_sec"), 0),
    ("TLS stream 16 KiB × 1 (depth 4): server CPU µs/MB", med("st1", per_mb), 1),
    ("TLS stream 16 KiB × 1 (depth 4): server CPU µs/msg", med("st1", "server_cpu_us_per_msg"), 2),
    ("TLS stream 16 KiB × 1 (depth 4): syscalls/msg", count("st1", "syscalls"), 2),
    ("TLS stream 16 KiB × 1 (depth 4): user-space instructions/msg (callgrind)", count("st1", "callgrind"), 0),
    ("TLS stream 16 KiB × 1 (depth 4): server CPU in user space, %", med("st1", "user_pct"), 0),
    ("TLS stream 16 KiB × 1 (depth 4): generator CPU % of a core", med("st1", "gen_cpu_pct"), 0),
    (f"full {hs}: handshakes/s", med("hsfull", "handshakes_per_sec"), 0),
    (f"full {hs}: server CPU µs/handshake", med("hsfull", "server_cpu_us_per_handshake"), 1),
    (f"full {hs}: syscalls/handshake", count("hsfull", "syscalls"), 2),
    (f"full {hs}: user-space instructions/handshake (callgrind)", count("hsfull", "callgrind"), 0),
    (f"full {hs}: p50 µs (connect to echo)", med("hsfull", "p50_us"), 0),
    (f"full {hs}: generator CPU % of a core", med("hsfull", "gen_cpu_pct"), 0),
    (f"resumed {hs}: handshakes/s", med("hsres", "handshakes_per_sec"), 0),
    (f"resumed {hs}: server CPU µs/handshake", med("hsres", "server_cpu_us_per_handshake"), 1),
    (f"resumed {hs}: syscalls/handshake", count("hsres", "syscalls"), 2),
    (f"resumed {hs}: user-space instructions/handshake (callgrind)", count("hsres", "callgrind"), 0),
    (f"resumed {hs}: p50 µs (connect to echo)", med("hsres", "p50_us"), 0),
    (f"resumed {hs}: resumed, % of handshakes", med("hsres", resumed_pct), 1),
    (f"resumed {hs}: generator CPU % of a core", med("hsres", "gen_cpu_pct"), 0),
    (f"RSS per idle TLS connection, {idle} open: B", idle_rss, 0),
    ("server waiting for CPU 0 (run queue), % of the run, pingpong", med("pp50", "runq_pct"), 1),
    ("server waiting for CPU 0 (run queue), % of the run, full handshakes", med("hsfull", "runq_pct"), 1),
]
# Rows that describe the run rather than the server: no ratio.
CONTEXT = ("generator CPU", "server waiting", "resumed, %", "in user space")


def fmt(v, places):
    return "–" if v is None else f"{v:,.{places}f}".replace(",", " ")


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


values = {}
lines = ["| figure | ours (edgechat) | peer (tokio-rustls) | ours/peer |",
         "|---|---:|---:|---:|"]
with open(tsv, "w") as t:
    t.write("figure\tours\tpeer\n")
    for label, get, places in rows:
        v = {name: get(name) for name in names}
        values[label] = v
        r = "–" if any(c in label for c in CONTEXT) else ratio(v["ours"], v["peer"])
        lines.append(f"| {label} | {fmt(v['ours'], places)} | {fmt(v['peer'], places)} | {r} |")
        cells = ["" if v[k] is None else f"{v[k]:.{places}f}" for k in names]
        t.write("\t".join([label] + cells) + "\n")


def val(start, name):
    for label, v in values.items():
        if label.startswith(start):
            return v[name]
    return None


def goal(text, a, b, ok):
    mark = "–" if a is None or b is None else ("met" if ok(a, b) else "MISSED")
    return f"- {mark}: {text} ({ratio(a, b)}: {fmt(a, 3)} vs {fmt(b, 3)})"


pp = [val("TLS pingpong 64 B × 50: server CPU", k) for k in names]
st = [val("TLS stream 16 KiB × 1 (depth 4): server CPU", k) for k in names]
hf = [val(f"full {hs}: handshakes/s", k) for k in names]
hr = [val(f"resumed {hs}: handshakes/s", k) for k in names]
hfc = [val(f"full {hs}: server CPU", k) for k in names]
hrc = [val(f"resumed {hs}: server CPU", k) for k in names]
rss = val("RSS", "ours")
goals = [
    goal("TLS pingpong server CPU/msg ≤ 0.95× the peer", *pp, lambda a, b: a <= 0.95 * b),
    goal("TLS stream server CPU/MB ≤ 0.95× the peer", *st, lambda a, b: a <= 0.95 * b),
    goal("full handshakes/s not behind the peer (≥ 0.98×: within run-to-run noise)", *hf,
         lambda a, b: a >= 0.98 * b),
    goal("resumed handshakes/s not behind the peer (≥ 0.98×)", *hr, lambda a, b: a >= 0.98 * b),
    goal("server CPU per full handshake ≤ the peer's (context)", *hfc, lambda a, b: a <= b),
    goal("server CPU per resumed handshake ≤ the peer's (context)", *hrc, lambda a, b: a <= b),
    ("- –" if rss is None else ("- met" if rss <= 10240 else "- MISSED"))
    + f": RSS per idle TLS connection ≤ 10 KiB ({fmt(rss, 0)} B)",
]

print("# TLS echo: edgechat beside the tokio-rustls peer\n")
print("\n".join(lines))
print()
print(f"Medians of {rounds} interleaved rounds of {secs} s per load (fresh server "
      f"per round); server on CPU 0, `edgechat bench --tls` on CPU 1; same "
      f"certificate (ECDSA P-256, `certs/`), rustls 0.23 with aws-lc-rs on both "
      f"sides, tickets on. Handshakes: a new connection each, {hsconns} at once, "
      f"one 64 B echo, close_notify, close. Syscalls and instructions: "
      f"(count(2N) − count(N)) / N with exactly N and 2N operations (`bench --count`, "
      f"`scripts/lib.sh` two_point; the server on CPU 0 and the driver on CPU 1 "
      f"unless both servers were counted at once); N = {n} pingpong messages, {st_n} "
      f"stream messages, {hs_n} handshakes of each kind under callgrind (counted from "
      f"when the server listens), {sys_scale}× those for the syscalls (perf or strace); "
      f"a load not counted shows –. RSS: "
      f"(VmRSS with {idle} TLS connections open, handshakes done − VmRSS before) "
      f"/ {idle}. Load average (1/5/15 min): {load0} at the start, {load1} after "
      f"the timed rounds, {load2} at the end, on {os.cpu_count()} CPUs. "
      f"Commit {commit}, {took} s.")
if errors:
    print("\nRuns with errors: " + "; ".join(errors))
print("\n## How edgechat stands against its targets\n")
print("\n".join(goals))
