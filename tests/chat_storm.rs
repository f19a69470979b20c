//! Storms: 10 000 clients joining one room at once, then leaving it at
//! once. Every connect sends `JOIN` to the whole lobby and every leave a
//! `QUIT`, 50 million lines each way; the server must stay responsive
//! (a client that connects meanwhile gets `HELLO`, and `PONG` for
//! `/ping`, within 1 s), bounded (peak RSS under 256 MiB) and stoppable
//! (SIGTERM begins the shutdown at once; a second signal exits at once).
//! The storm is `edgechat bench --mode idle`, which connects, reads and
//! drops everything it is sent, holds, and exits, closing every
//! connection at the same moment.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::Signal;

const CLIENTS: usize = 10_000;
/// What a client that connects during a storm may wait for each answer.
const ANSWER: Duration = Duration::from_secs(1);
const MAX_PEAK_RSS: u64 = 256 << 20;
/// One storm at a time: two at once would measure each other.
static ONE_STORM: Mutex<()> = Mutex::new(());

fn chat_server(extra: &[&str]) -> Server {
    let mut args = vec![
        "--tcp",
        "127.0.0.1:0",
        "--max-clients",
        "10100",
        "--idle-timeout",
        "0",
    ];
    args.extend_from_slice(extra);
    Server::start_mode("chat", &args)
}

/// `edgechat bench --mode idle`: `CLIENTS` connections held for `secs`.
fn storm(addr: SocketAddr, secs: u32) -> Child {
    let (addr, conns, secs) = (addr.to_string(), CLIENTS.to_string(), secs.to_string());
    let args = [
        "bench", "--mode", "idle", "--addr", &addr, "--conns", &conns, "--secs", &secs,
    ];
    spawn_edgechat(&args, Stdio::null())
}

/// A client connects, waits for `HELLO`, sends `/ping storm` and waits for
/// its `PONG`: how long each took.
fn probe(addr: SocketAddr) -> (Duration, Duration) {
    let start = Instant::now();
    let s = connect(addr);
    let mut r = BufReader::new(s.try_clone().expect("clone"));
    let mut line = String::new();
    r.read_line(&mut line).expect("HELLO");
    assert!(line.starts_with("HELLO "), "{line:?}");
    let hello = start.elapsed();
    let asked = Instant::now();
    (&s).write_all(b"/ping storm\n").expect("/ping");
    loop {
        line.clear();
        assert!(r.read_line(&mut line).expect("PONG") > 0, "closed");
        if line == "PONG storm\n" {
            break;
        }
    }
    (hello, asked.elapsed())
}

/// Probes every `every` until `done` returns true, then five more times;
/// returns the slowest `HELLO` and `PONG` and the number of probes.
fn probe_until(
    addr: SocketAddr,
    every: Duration,
    mut done: impl FnMut() -> bool,
) -> (Duration, Duration, usize) {
    let (mut hello, mut pong, mut n) = (Duration::ZERO, Duration::ZERO, 0);
    let mut after = 5;
    while after > 0 {
        if done() {
            after -= 1;
        }
        let (h, p) = probe(addr);
        (hello, pong, n) = (hello.max(h), pong.max(p), n + 1);
        thread::sleep(every);
    }
    (hello, pong, n)
}

#[test]
fn a_join_and_leave_storm_leaves_the_server_responsive_and_bounded() {
    let _one = ONE_STORM.lock().unwrap_or_else(|e| e.into_inner());
    let server = chat_server(&[]);
    let addr = server.addr();
    let idle = server.open_fds();
    let mut bench = storm(addr, 1);
    // The join storm: probes until every storm client is in. (Each probe
    // is a JOIN and a QUIT to the whole room: they stop before the bench
    // waits for the room to go quiet.)
    let joining = probe_until(addr, Duration::from_millis(200), || {
        server.open_fds() >= idle + CLIENTS
    });
    let status = wait_child(&mut bench, TIMEOUT).expect("the storm's end");
    // The leave storm began as the bench exited: probes until the server
    // holds none of its clients.
    let leaving = probe_until(addr, Duration::from_millis(50), || {
        server.open_fds() <= idle
    });
    let out = finish_edgechat(bench, None, &["bench"], TIMEOUT);
    assert!(
        status.success(),
        "the storm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!("{CLIENTS} open at the end ({CLIENTS} HELLO)")),
        "not every storm client was served: {report}"
    );
    let peak = server.peak_rss();
    eprintln!(
        "joining: {} probes, slowest HELLO {:?}, PONG {:?}; leaving: {} probes, \
         slowest HELLO {:?}, PONG {:?}; peak RSS {} MiB",
        joining.2,
        joining.0,
        joining.1,
        leaving.2,
        leaving.0,
        leaving.1,
        peak >> 20
    );
    for (what, (hello, pong, _)) in [("joining", joining), ("leaving", leaving)] {
        assert!(hello <= ANSWER, "HELLO took {hello:?} while {what}");
        assert!(pong <= ANSWER, "PONG took {pong:?} while {what}");
    }
    assert!(
        peak <= MAX_PEAK_RSS,
        "peak RSS {} MiB for {CLIENTS} clients joining and leaving",
        peak >> 20
    );
}

/// Waits until the server holds `n` descriptors more than it did idle.
fn wait_clients(server: &Server, idle: usize, n: usize) {
    wait_until("the storm to be under way", || {
        server.open_fds() >= idle + n
    });
}

/// Ends a storm that outlived its server.
fn stop(mut bench: Child) {
    let _ = bench.kill();
    let _ = bench.wait();
}

#[test]
fn sigterm_during_a_storm_stops_the_server_in_time() {
    let _one = ONE_STORM.lock().unwrap_or_else(|e| e.into_inner());
    const SHUTDOWN: u64 = 3;
    // One signal: a graceful shutdown, over within --shutdown-timeout.
    let mut server = chat_server(&["--shutdown-timeout", &SHUTDOWN.to_string()]);
    let idle = server.open_fds();
    let bench = storm(server.addr(), 30);
    wait_clients(&server, idle, CLIENTS / 4);
    server.signal(Signal::SIGTERM);
    let asked = Instant::now();
    let status = server.wait_exit(Duration::from_secs(SHUTDOWN + 2));
    eprintln!("one SIGTERM: exited after {:?}", asked.elapsed());
    assert!(status.success(), "{status}");
    assert!(
        asked.elapsed() <= Duration::from_secs(SHUTDOWN + 1),
        "exited {:?} after SIGTERM, --shutdown-timeout {SHUTDOWN}",
        asked.elapsed()
    );
    stop(bench);

    // Two signals: the second exits at once.
    let mut server = chat_server(&["--shutdown-timeout", "60"]);
    let idle = server.open_fds();
    let bench = storm(server.addr(), 30);
    wait_clients(&server, idle, CLIENTS / 4);
    server.signal(Signal::SIGTERM);
    server.signal(Signal::SIGTERM);
    let asked = Instant::now();
    let status = server.wait_exit(Duration::from_secs(5));
    eprintln!("two SIGTERMs: exited after {:?}", asked.elapsed());
    assert!(status.success(), "{status}");
    assert!(
        asked.elapsed() <= ANSWER,
        "exited {:?} after a second SIGTERM",
        asked.elapsed()
    );
    stop(bench);
}
