//! Bounds under stress: a client that never reads, connection storms,
//! `--max-clients`, and running out of descriptors (EMFILE).

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

const MIB: u64 = 1 << 20;

#[test]
fn backpressure_bounds_memory_and_serves_others() {
    let server = Server::start(&["--tcp", "127.0.0.1:0", "--max-output", "1048576"]);
    let mut other = connect(server.addr());
    assert_echo(&mut other, b"warm-up");
    let baseline = server.rss();

    // A client with a tiny receive window that sends and never reads.
    let mut hog = connect_small_rcvbuf(server.addr(), 4096);
    let data = random_bytes(64 << 20, 30);
    let sent = push_until_stalled(&mut hog, &data, Duration::from_millis(500));
    assert!(sent > MIB as usize, "stalled after only {sent} bytes");

    // Everyone else is still served while the hog is stuck.
    for i in 0..50u32 {
        let msg = random_bytes(1000 + i as usize, 31 + u64::from(i));
        assert_echo(&mut other, &msg);
    }
    let mut late = connect(server.addr());
    assert_echo(&mut late, &random_bytes(200_000, 32));

    // The server owes the hog at most about --max-output: it stopped
    // reading instead of buffering the rest.
    let rss = server.rss();
    eprintln!(
        "RSS {} KiB -> {} KiB after {sent} bytes",
        baseline / 1024,
        rss / 1024
    );
    let bound = baseline + 3 * MIB + 8 * MIB;
    assert!(
        rss <= bound,
        "server RSS grew from {} KiB to {} KiB (bound {} KiB) after {sent} bytes",
        baseline / 1024,
        rss / 1024,
        bound / 1024
    );

    // Once the hog reads, it gets back exactly what it sent, in order.
    let got = with_timeout("hog drains", move || {
        let got = read_n(&mut hog, sent);
        // And nothing more: the FIN comes right after.
        let rest = shutdown_and_read_all(&mut hog);
        (got, rest)
    });
    let (got, rest) = got;
    let first_diff = got.iter().zip(&data[..sent]).position(|(a, b)| a != b);
    assert_eq!(
        first_diff, None,
        "first byte that differs from what was sent"
    );
    assert_eq!(rest.len(), 0, "bytes after everything sent came back");
    assert_echo(&mut other, b"still here");
}

#[test]
fn thousands_of_resets_then_normal_service() {
    let server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let idle_fds = server.idle_fds();
    let addr = server.addr();
    with_timeout("3000 connects and resets", move || {
        for i in 0..3000u32 {
            let mut s = connect(addr);
            if i % 3 == 0 {
                s.write_all(&i.to_be_bytes()).unwrap();
            }
            set_linger_zero(&s);
            drop(s); // close with SO_LINGER 0: RST instead of FIN
        }
    });
    let mut s = connect(server.addr());
    assert_echo(&mut s, b"after the storm");
    assert_echo(&mut s, &random_bytes(500_000, 40));
    drop(s);
    // Every reset connection was closed on the server side too: no leak.
    server.wait_fds(idle_fds);
}

#[test]
fn max_clients_closes_the_extra_connection() {
    let server = Server::start(&["--tcp", "127.0.0.1:0", "--max-clients", "5"]);
    let mut five: Vec<_> = (0..5).map(|_| connect(server.addr())).collect();
    for (i, s) in five.iter_mut().enumerate() {
        assert_echo(s, format!("client {i}").as_bytes());
    }
    let full_fds = server.open_fds();

    let mut sixth = connect(server.addr());
    // The write may already fail if the server closed it first.
    let _ = sixth.write_all(b"let me in");
    let ended = with_timeout("sixth connection", move || expect_closed(&mut sixth));
    eprintln!("sixth connection: {ended:?}");
    for s in &mut five {
        assert_echo(s, b"still served");
    }

    // One leaves; once the server has closed its side, a newcomer fits.
    drop(five.pop());
    server.wait_fds(full_fds - 1);
    let mut newcomer = connect(server.addr());
    assert_echo(&mut newcomer, b"my turn");
    for s in &mut five {
        assert_echo(s, b"still served");
    }
}

#[test]
fn emfile_sheds_connections_without_spinning() {
    const CLIENTS: usize = 60;
    const HEADROOM: usize = 10;
    let mut server = Server::start(&["--tcp", "127.0.0.1:0"]);
    let idle_fds = server.idle_fds();
    // Descriptor numbers need not be dense (the server may inherit a stray
    // one from its parent): pick the limit that leaves exactly HEADROOM free
    // numbers below it.
    let used: Vec<u64> = server.fds().into_iter().map(|(n, _)| n).collect();
    let limit = (0..)
        .find(|&l| l - used.iter().filter(|&&n| n < l).count() as u64 == HEADROOM as u64)
        .unwrap();
    let rlim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: `rlim` is a valid rlimit for prlimit(2) to read; the old
    // value is not asked for (null).
    let rc = unsafe {
        libc::prlimit(
            server.pid(),
            libc::RLIMIT_NOFILE,
            &rlim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    eprintln!(
        "RLIMIT_NOFILE lowered to {limit}; idle server:\n{}",
        server.fd_list()
    );

    let cpu_before = server.cpu_time();
    let started = Instant::now();
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| connect(server.addr())).collect();
    for (i, s) in clients.iter_mut().enumerate() {
        // A shed connection may already be gone: the write may fail.
        let _ = s.write_all(format!("ping {i:02}").as_bytes());
    }
    thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
    let cpu = server.cpu_time() - cpu_before;
    server.assert_alive();
    assert!(
        cpu < Duration::from_millis(500),
        "server used {cpu:?} of CPU in ~1 s at the fd limit: a busy loop"
    );

    // Each client was either served (its ping echoed) or closed, never left
    // hanging; no more were served than the descriptors allowed.
    let (served, shed) = with_timeout("sort the clients", move || {
        let mut served = Vec::new();
        let mut shed = 0;
        for (i, mut s) in clients.into_iter().enumerate() {
            let ping = format!("ping {i:02}");
            let mut got = Vec::new();
            let mut buf = [0u8; 16];
            let closed = loop {
                match std::io::Read::read(&mut s, &mut buf) {
                    Ok(0) => break true,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                    Err(e) => panic!("client {i}: {e}"),
                }
                if got.len() >= ping.len() {
                    break false;
                }
            };
            if closed {
                assert_eq!(got, b"", "client {i} got bytes, then was closed");
                shed += 1;
            } else {
                assert_eq!(got, ping.as_bytes(), "client {i}");
                served.push(s);
            }
        }
        (served, shed)
    });
    eprintln!("at the fd limit: {} served, {shed} closed", served.len());
    assert_eq!(
        served.len(),
        HEADROOM,
        "clients served with {HEADROOM} free fds"
    );
    assert_eq!(served.len() + shed, CLIENTS);

    drop(served);
    server.wait_fds(idle_fds);
    server.assert_alive();
    let mut fresh = connect(server.addr());
    assert_echo(&mut fresh, b"after EMFILE");
    assert_echo(&mut fresh, &random_bytes(100_000, 50));
    // 50 connections shed in about a second: a line or two, not 50.
    let log = server.log();
    let lines = log.matches("dropped a pending connection").count();
    let secs = started.elapsed().as_secs() as usize;
    assert!(
        (1..=secs + 1).contains(&lines),
        "{lines} log lines for {shed} shed connections in {secs} s:\n{log}"
    );
}

/// `--linger-timeout`: a connection the server is closing (the client
/// half-closed) that never reads what it is owed is not kept forever.
#[test]
fn closing_connection_that_never_reads_is_dropped_after_linger_timeout() {
    let server = Server::start(&[
        "--tcp",
        "127.0.0.1:0",
        "--linger-timeout",
        "1",
        "--max-output",
        "67108864",
    ]);
    let idle = server.idle_fds();
    let mut c = connect_small_rcvbuf(server.addr(), 4096);
    // The server reads all of it (under --max-output) and owes it back.
    c.write_all(&random_bytes(8 << 20, 7)).expect("write");
    c.shutdown(std::net::Shutdown::Write).expect("shutdown");
    // The server has read to EOF and owes more than the socket can take:
    // it holds the connection while it waits for the client to read...
    thread::sleep(Duration::from_millis(300));
    assert_eq!(server.open_fds(), idle + 1, "closed before its linger time");
    // ...but only for --linger-timeout (the bound, not the client, ends it).
    let t0 = Instant::now();
    server.wait_fds(idle);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    drop(c);
}

/// `--max-clients` that does not fit `RLIMIT_NOFILE` is lowered to fit, with
/// a warning, and the lowered bound is the one enforced: the server never
/// runs out of descriptors for the clients it accepted.
#[test]
fn max_clients_is_lowered_to_fit_the_descriptor_limit() {
    let server = Server::start_with_nofile(
        64,
        "echo",
        &["--tcp", "127.0.0.1:0", "--max-clients", "10000"],
    );
    let log = server.log();
    let fits: usize = log
        .split("lowered to ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no warning that --max-clients was lowered:\n{log}"));
    assert!(
        log.contains("--max-clients 10000 does not fit RLIMIT_NOFILE 64"),
        "{log}"
    );
    assert!(fits > 0 && fits < 64, "lowered to {fits}");
    let mut served: Vec<_> = (0..fits).map(|_| connect(server.addr())).collect();
    for (i, s) in served.iter_mut().enumerate() {
        assert_echo(s, format!("client {i}").as_bytes());
    }
    let mut extra = connect(server.addr());
    let _ = extra.write_all(b"one too many");
    let ended = with_timeout("the extra connection", move || expect_closed(&mut extra));
    eprintln!("extra connection: {ended:?}");
    for s in &mut served {
        assert_echo(s, b"still served");
    }
}

/// Closing a connection leaves its deadlines on the timer heap until they
/// come due; a client that connects and resets in a loop must not grow the
/// heap (and the server's memory) with the connection rate.
#[test]
fn connection_churn_does_not_grow_the_timer_heap() {
    // Each TLS connection puts its handshake deadline on the heap.
    let server = Server::start(&["--tcp", "127.0.0.1:0", "--tls", "127.0.0.1:0"]);
    for _ in 0..10_000 {
        let s = connect(server.tls[0]);
        set_linger_zero(&s);
    }
    // Every one of them has been accepted and closed once this is served.
    let mut last = connect(server.addr());
    assert_echo(&mut last, b"after the churn");
    let line = server.stats();
    let timers = count(&line, "timers");
    eprintln!("after 10000 connections: {line}");
    assert!(
        timers <= 4097,
        "{timers} deadlines on the heap for 1 client"
    );
    assert_eq!(count(&line, "clients"), 1);
}

/// A client that asks for more than it reads (`/who` in a full room, never
/// reading) is cut as a slow consumer, and the rest of what it already
/// sent is not handled: one write must not buy more work than the output
/// bound allows.
#[test]
fn lines_after_a_slow_consumer_cut_are_not_handled() {
    const ASKS: usize = 10_000;
    let server = Server::start_mode("chat", &["--tcp", "127.0.0.1:0", "--max-output", "65536"]);
    let mut room: Vec<_> = (0..200).map(|_| connect(server.addr())).collect();
    let mut asker = connect_small_rcvbuf(server.addr(), 4096);
    asker.write_all(&b"/who\n".repeat(ASKS)).expect("write");
    // It never reads: the server closes it when it is cut.
    wait_until("the asker to be cut", || {
        count(&server.stats(), "clients") == 200
    });
    let line = server.stats();
    eprintln!("{line}");
    let handled = count(&line, "msgs_in");
    assert!(
        handled < ASKS as u64 / 2,
        "{handled} of {ASKS} lines handled for a client cut as a slow consumer"
    );
    let mut fresh = connect(server.addr());
    let mut hello = [0u8; 6];
    std::io::Read::read_exact(&mut fresh, &mut hello).expect("HELLO");
    assert_eq!(&hello, b"HELLO ");
    room.clear();
    drop(asker);
}

/// `--max-output` bounds memory, not only bytes: a chat client that never
/// reads, sent 1-byte lines (14 bytes each as relayed), costs the server at
/// most about `--max-output` before it is cut (what it owes counts as the
/// memory its buffer holds).
#[test]
fn a_slow_consumer_of_tiny_lines_costs_at_most_max_output() {
    const MAX_OUTPUT: u64 = 4 * MIB;
    let max = MAX_OUTPUT.to_string();
    let server = Server::start_mode(
        "chat",
        &[
            "--tcp",
            "127.0.0.1:0",
            "--max-output",
            &max,
            "--sndbuf",
            "4096",
        ],
    );
    let mut talker = connect(server.addr());
    let hog = connect_small_rcvbuf(server.addr(), 4096);
    // HELLO, then JOIN of the hog: the talker reads nothing else until
    // the hog is cut.
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    wait_until("the hog to join", || {
        let n = std::io::Read::read(&mut talker, &mut buf).expect("read");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.contains("JOIN ")
    });
    let before = server.rss();
    // 400 000 lines of 1 byte, each relayed to the hog as 14 bytes or so.
    let mut w = talker.try_clone().expect("clone");
    let writer = thread::spawn(move || w.write_all(&b"x\n".repeat(400_000)));
    wait_until("the hog to be cut", || {
        let n = std::io::Read::read(&mut talker, &mut buf).expect("read");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.contains(" slow-consumer\n")
    });
    let grew = server.peak_rss().saturating_sub(before);
    writer.join().expect("writer").expect("write");
    eprintln!(
        "peak RSS {} KiB over {} KiB before the flood, --max-output {} KiB",
        grew / 1024,
        before / 1024,
        MAX_OUTPUT / 1024
    );
    // The hog's lines, with their slots and allocations, within
    // --max-output; 1 MiB more for everything else the server touched.
    assert!(
        grew <= MAX_OUTPUT + MIB,
        "the server grew by {} KiB for a client cut at --max-output {} KiB",
        grew / 1024,
        MAX_OUTPUT / 1024
    );
    drop(hog);
}

/// `--sndbuf`: the kernel's send buffer for a client that stops reading
/// stays at the size asked (the kernel doubles it), instead of growing up
/// to `tcp_wmem`'s maximum; with `--max-output`, what one stalled client
/// costs is bounded in the kernel as well as in the server.
#[test]
fn sndbuf_bounds_the_kernel_queue_of_a_client_that_stops_reading() {
    const SNDBUF: u64 = 16_384;
    let mut queued = Vec::new();
    for args in [&["--sndbuf", "16384"][..], &[][..]] {
        let mut argv = vec!["--tcp", "127.0.0.1:0", "--max-output", "65536"];
        argv.extend_from_slice(args);
        let server = Server::start(&argv);
        let mut c = connect_small_rcvbuf(server.addr(), 4096);
        let me = c.local_addr().expect("local addr");
        push_until_stalled(
            &mut c,
            &random_bytes(64 << 20, 3),
            Duration::from_millis(300),
        );
        let q = tcp_queues(server.addr(), me).expect("the server's socket");
        eprintln!("{args:?}: server send queue {} bytes", q.tx);
        queued.push(q.tx);
    }
    assert!(
        queued[0] <= 2 * SNDBUF,
        "{} bytes queued in the kernel with --sndbuf {SNDBUF}",
        queued[0]
    );
    // The same client without the flag: autotuning let the queue grow.
    assert!(queued[1] > 2 * SNDBUF, "{queued:?}: the test shows nothing");
}
