//! End to end with the real binary against real pub/sub servers: `edgechat
//! bench --mode chat --proto redis` against `redis-server`, and `--proto
//! nats` against `nats-server`, each started here on a free loopback port
//! and killed by a guard when the test ends, pass or fail. Every line must
//! reach every receiver, in order, and `--server-pid` must measure the
//! other server as it measures ours. Both servers must be installed
//! (`redis-server`, `nats-server` on `PATH`): without them these tests
//! fail, they do not skip.

mod common;

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{bench_json_at, field, run_edgechat, wait_child, TIMEOUT};

/// A pub/sub server of another project, killed and reaped on drop.
struct Peer {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

impl Peer {
    /// Starts `program` with the arguments `args(port)` makes, on a free
    /// port, and waits (at most [`TIMEOUT`]) until it accepts. A server
    /// that exits at once (its port taken meanwhile) is tried again on
    /// another port.
    fn start(program: &str, args: impl Fn(u16) -> Vec<String>) -> Peer {
        let mut last = String::new();
        for attempt in 0..3 {
            let port = free_port();
            let log = std::env::temp_dir().join(format!(
                "edgechat-bench-proto-{program}-{}-{port}-{attempt}.log",
                std::process::id()
            ));
            let out = File::create(&log).expect("create the server's log");
            let err = out.try_clone().expect("dup the log");
            let child = Command::new(program)
                .args(args(port))
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run {program} ({e}): install it (apt-get install {program})")
                });
            let mut peer = Peer {
                child,
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
                log,
            };
            match peer.wait_accepting() {
                Ok(()) => return peer,
                Err(why) => last = format!("{why}; its output:\n{}", peer.output()),
            }
        }
        panic!("{program} did not start: {last}");
    }

    fn wait_accepting(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("it exited: {status}"));
            }
            if TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("nothing accepted on {} in {TIMEOUT:?}", self.addr));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs `edgechat bench --mode chat --proto PROTO --json --server-pid
    /// PID ARGS` against this server and returns its JSON line.
    fn bench(&self, proto: &str, args: &[&str]) -> String {
        let mut all = vec!["--mode", "chat", "--proto", proto];
        all.extend(args);
        let json = bench_json_at(self.addr, self.pid(), &all);
        assert!(json.contains(&format!("\"proto\":\"{proto}\"")), "{json}");
        json
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = wait_child(&mut self.child, TIMEOUT);
        let _ = std::fs::remove_file(&self.log);
    }
}

fn redis(extra: &[&str]) -> Peer {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Peer::start("redis-server", move |port| {
        let mut a: Vec<String> = ["--port", &port.to_string(), "--bind", "127.0.0.1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(["--save", "", "--appendonly", "no"].map(String::from));
        a.extend(extra.iter().cloned());
        a
    })
}

fn nats(extra: &[&str]) -> Peer {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    Peer::start("nats-server", move |port| {
        let mut a = vec![
            "-a".to_string(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
        ];
        a.extend(extra.iter().cloned());
        a
    })
}

/// Every line reached every receiver, none out of order, none foreign.
fn assert_all_delivered(json: &str, lines: f64, receivers: f64) {
    assert_eq!(field(json, "lines"), lines, "{json}");
    assert_eq!(field(json, "deliveries"), lines * receivers, "{json}");
    for key in ["errors", "order_errors", "bad_lines", "failed_conns"] {
        assert_eq!(field(json, key), 0.0, "{key}: {json}");
    }
    assert!(json.contains("\"first_error\":null"), "{json}");
}

/// `--count` lines from 3 senders, 8 in flight each, to 4 receivers.
const COUNT_ARGS: [&str; 10] = [
    "--count",
    "600",
    "--senders",
    "3",
    "--receivers",
    "4",
    "--depth",
    "8",
    "--size",
    "100",
];

#[test]
fn redis_delivers_every_line_to_every_receiver() {
    let server = redis(&[]);
    let json = server.bench("redis", &COUNT_ARGS);
    assert_all_delivered(&json, 600.0, 4.0);
    assert!(field(&json, "p99_us") >= field(&json, "p50_us"), "{json}");
}

#[test]
fn nats_delivers_every_line_to_every_receiver() {
    let server = nats(&[]);
    let json = server.bench("nats", &COUNT_ARGS);
    assert_all_delivered(&json, 600.0, 4.0);
    assert!(field(&json, "p99_us") >= field(&json, "p50_us"), "{json}");
}

#[test]
fn lines_longer_than_a_read_arrive_whole() {
    // 200 000-byte lines: every message spans several 64 KiB reads.
    let args = ["--count", "40", "--receivers", "2", "--size", "200000"];
    let server = redis(&[]);
    assert_all_delivered(&server.bench("redis", &args), 40.0, 2.0);
    let server = nats(&[]);
    assert_all_delivered(&server.bench("nats", &args), 40.0, 2.0);
}

#[test]
fn redis_server_pid_gives_its_cpu_and_rss() {
    let server = redis(&[]);
    let args = [
        "--secs",
        "0.5",
        "--warmup",
        "0.1",
        "--senders",
        "2",
        "--receivers",
        "5",
        "--depth",
        "4",
    ];
    let json = server.bench("redis", &args);
    assert!(field(&json, "deliveries") > 0.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
    // Half a second of relaying costs redis-server some CPU time.
    assert!(field(&json, "server_cpu_us") > 0.0, "{json}");
    assert!(field(&json, "server_cpu_us_per_delivery") > 0.0, "{json}");
    assert!(field(&json, "server_cpu_pct") > 0.0, "{json}");
    assert!(field(&json, "server_rss_kib") > 0.0, "{json}");
}

#[test]
fn nats_for_a_time_window_answers_the_servers_pings() {
    // A server that pings each client 100 ms after it connects (and again
    // whenever it has been quiet that long), tracing every operation.
    let conf = std::env::temp_dir().join(format!(
        "edgechat-bench-proto-nats-{}.conf",
        std::process::id()
    ));
    std::fs::write(&conf, "ping_interval: \"100ms\"\nping_max: 2\n").expect("write nats.conf");
    let conf_arg = conf.to_string_lossy().into_owned();
    let server = nats(&["-c", &conf_arg, "-V"]);
    let args = [
        "--secs",
        "0.5",
        "--warmup",
        "0.2",
        "--senders",
        "2",
        "--receivers",
        "3",
    ];
    let json = server.bench("nats", &args);
    let _ = std::fs::remove_file(&conf);
    assert!(field(&json, "deliveries") > 0.0, "{json}");
    assert_eq!(field(&json, "errors"), 0.0, "{json}");
    assert!(field(&json, "server_cpu_us") >= 0.0, "{json}");
    // Every client, senders and receivers, answered the server's PING (a
    // PING in the run's last moments may go unanswered: count clients).
    let trace = server.output();
    let pinged = clients_with(&trace, "->> [PING]");
    let ponged = clients_with(&trace, "<<- [PONG]");
    assert_eq!(pinged.len(), 5, "clients pinged: {pinged:?}");
    assert_eq!(ponged, pinged, "clients that answered");
}

/// The client ids (`cid:N`) of a NATS trace's lines that end in `op`.
fn clients_with(trace: &str, op: &str) -> std::collections::BTreeSet<u64> {
    trace
        .lines()
        .filter(|l| l.ends_with(op))
        .filter_map(|l| l.split(" - cid:").nth(1)?.split(' ').next()?.parse().ok())
        .collect()
}

#[test]
fn a_servers_error_reply_fails_the_run_with_its_text() {
    let server = redis(&["--requirepass", "secret"]);
    let addr = server.addr.to_string();
    let args = [
        "bench",
        "--addr",
        &addr,
        "--mode",
        "chat",
        "--proto",
        "redis",
        "--count",
        "10",
        "--receivers",
        "2",
    ];
    let out = run_edgechat(&args, Stdio::null(), None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout} {stderr}");
    assert!(stderr.contains("NOAUTH"), "{stdout} {stderr}");
    assert!(
        stderr.contains("redis server answered with an error"),
        "{stderr}"
    );
}

#[test]
fn proto_is_refused_where_it_does_not_apply() {
    for (args, want) in [
        (
            &["--proto", "redis", "--mode", "stream"][..],
            "--proto redis is for --mode chat",
        ),
        (
            &["--proto", "nats", "--mode", "idle"][..],
            "--proto nats is for --mode chat",
        ),
        (
            &["--proto", "nats", "--mode", "chat", "--tls"][..],
            "--tls is for --proto edgechat",
        ),
        (&["--proto", "mqtt", "--mode", "chat"][..], "mqtt"),
    ] {
        let mut all = vec!["bench", "--addr", "127.0.0.1:9"];
        all.extend(args);
        let out = run_edgechat(&all, Stdio::null(), None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
