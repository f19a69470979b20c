//! Chat delivery over real sockets: order, fan-out, slow consumers,
//! disconnects, half-close, timeouts and graceful shutdown.

mod chatkit;
mod common;

use std::thread;
use std::time::Duration;

use chatkit::{Client, Server};

/// Connects with a tiny receive buffer (`common::connect_small_rcvbuf`)
/// and reads the greeting.
fn connect_tiny_rcvbuf(srv: &Server) -> Client {
    let stream = common::connect_small_rcvbuf(srv.addr, 4096);
    stream
        .set_read_timeout(Some(chatkit::WAIT))
        .expect("timeout");
    let mut c = Client {
        r: std::io::BufReader::new(stream),
        nick: String::new(),
    };
    let hello = c.line();
    c.nick = hello.split(' ').nth(1).expect("nick").to_string();
    c
}

#[test]
fn four_senders_500_lines_each_arrive_in_order() {
    let srv = Server::start(&[]);
    let mut rx = srv.join();
    let mut senders: Vec<Client> = (0..4).map(|_| srv.join()).collect();
    for _ in 0..4 {
        rx.line(); // JOINs
    }
    let nicks: Vec<String> = senders.iter().map(|s| s.nick.clone()).collect();
    let handles: Vec<_> = senders
        .drain(..)
        .enumerate()
        .map(|(i, mut s)| {
            thread::spawn(move || {
                let mut all = String::new();
                for n in 0..500 {
                    all.push_str(&format!("s{i} {n}\n"));
                }
                s.raw(all.as_bytes());
                s
            })
        })
        .collect();
    let mut next = [0usize; 4];
    let mut seen = 0;
    while seen < 4 * 499 + 4 {
        let l = rx.line();
        let Some(rest) = l.strip_prefix("MSG ") else {
            continue;
        };
        let (from, text) = rest.split_once(' ').expect("MSG from text");
        let i: usize = text[1..2].parse().expect("sender index");
        let n: usize = text[3..].parse().expect("line number");
        assert_eq!(from, nicks[i]);
        assert_eq!(n, next[i], "sender {i} out of order");
        next[i] += 1;
        seen += 1;
        if next.iter().all(|&n| n == 500) {
            break;
        }
    }
    assert_eq!(next, [500; 4]);
    let _keep: Vec<Client> = handles
        .into_iter()
        .map(|h| h.join().expect("sender"))
        .collect();
}

/// A turn whose lines pass the turn buffer's bound (256 KiB) is sent and
/// settled early, in the middle of a fan-out: a sender's 1.2 MB in one
/// write reaches a reader that keeps up and one that reads nothing until
/// the sender is done (so the server must keep, in its own buffer, what
/// that one's socket refuses before the turn's buffer is reused), whole
/// and in order.
#[test]
fn a_turn_past_its_bound_is_sent_early_and_loses_nothing() {
    const LINES: usize = 16_000;
    let srv = Server::start(&["--max-output", "67108864", "--sndbuf", "4096"]);
    let mut late = connect_tiny_rcvbuf(&srv);
    let mut quick = srv.join();
    let mut tx = srv.join();
    late.line(); // JOIN of quick
    late.line(); // JOIN of tx
    quick.line(); // JOIN of tx
    let pad = "x".repeat(60);
    let all: String = (0..LINES).map(|n| format!("{n:05} {pad}\n")).collect();
    assert!(all.len() > 1_000_000);
    let nick = tx.nick.clone();
    let sender = thread::spawn(move || {
        tx.raw(all.as_bytes());
        tx
    });
    for n in 0..LINES {
        assert_eq!(quick.line(), format!("MSG {nick} {n:05} {pad}"), "line {n}");
    }
    let _tx = sender.join().expect("sender");
    for n in 0..LINES {
        assert_eq!(
            late.line(),
            format!("MSG {nick} {n:05} {pad}"),
            "late line {n}"
        );
    }
}

#[test]
fn slow_consumer_is_cut_and_nobody_else_loses_a_line() {
    let srv = Server::start(&["--max-output", "65536"]);
    let mut fast = srv.join();
    let slow = connect_tiny_rcvbuf(&srv);
    let mut tx = srv.join();
    fast.expect(&[&format!("JOIN {}", slow.nick), &format!("JOIN {}", tx.nick)]);
    // 12 MB in all: more than the ~4 MB the kernel's send buffer can grow
    // to on loopback, so the server's own queue must pass --max-output.
    let payload = "p".repeat(4000);
    let sender = thread::spawn(move || {
        for i in 0..3000 {
            tx.send(&format!("{i} {payload}"));
        }
        tx
    });
    let mut got = 0;
    let mut cut_seen = false;
    while got < 3000 {
        let l = fast.line();
        if l == format!("QUIT {} slow-consumer", slow.nick) {
            cut_seen = true;
            continue;
        }
        let text = l.splitn(3, ' ').nth(2).expect("MSG text");
        let n: usize = text
            .split(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("number");
        assert_eq!(n, got, "fast receiver lost or reordered a line");
        got += 1;
    }
    assert!(cut_seen, "the slow consumer was never cut");
    let _tx = sender.join().expect("sender");
    drop(slow);
}

/// A slow consumer is cut between lines: what it receives is whole lines,
/// perhaps `ERR slow-consumer` last, and at most the start of one more line
/// (the one being sent when it was cut) with nothing after it; never the
/// `ERR` spliced into a line it had been sent part of. Readers that read a
/// little at a time make room in the socket while the server still fills
/// it, so a cut often finds a line half sent.
#[test]
fn a_cut_client_receives_only_whole_lines() {
    let srv = Server::start(&["--max-output", "1024", "--sndbuf", "4096"]);
    let mut tx = srv.join();
    for _ in 0..3 {
        cut_readers_get_whole_lines(&srv, &mut tx, 12);
    }
}

/// Line `i` of [`cut_readers_get_whole_lines`]'s sender: its length varies.
fn numbered(i: usize) -> String {
    format!("{i} {}", "p".repeat((i * 37) % 700))
}

/// `n` slow readers join; `tx` floods them until every one is cut; then
/// each reader's bytes are checked.
fn cut_readers_get_whole_lines(srv: &Server, tx: &mut Client, n: usize) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut readers = Vec::new();
    for _ in 0..n {
        let mut c = connect_tiny_rcvbuf(srv);
        tx.expect(&[&format!("JOIN {}", c.nick)]);
        readers.push(thread::spawn(move || {
            let (mut got, mut buf) = (Vec::new(), [0u8; 300]);
            // Whatever ends the stream (EOF or a reset), what came before it
            // is what is checked.
            while let Ok(n @ 1..) = c.r.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
                thread::sleep(Duration::from_micros(200));
            }
            got
        }));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut w = tx.stream().try_clone().expect("clone");
    let done = stop.clone();
    let writer = thread::spawn(move || {
        for i in 0..100_000 {
            if done.load(Ordering::Relaxed) {
                return;
            }
            w.write_all(format!("{}\n", numbered(i)).as_bytes())
                .expect("write");
        }
    });
    for _ in 0..n {
        let l = tx.line();
        assert!(l.ends_with(" slow-consumer"), "{l}");
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer");
    tx.expect_nothing(); // the server has handled every line sent
    let msg = format!("MSG {} ", tx.nick);
    let (mut errs, mut partial) = (0, 0);
    for r in readers {
        let got = String::from_utf8(r.join().expect("reader")).expect("UTF-8");
        let (whole, rest) = got.rsplit_once('\n').expect("HELLO at least");
        let lines: Vec<&str> = whole.split('\n').collect();
        let err = lines.last() == Some(&"ERR slow-consumer");
        for l in &lines[..lines.len() - usize::from(err)] {
            let ok = match l.strip_prefix(&msg) {
                Some(text) => {
                    let i = text.split(' ').next().and_then(|i| i.parse().ok());
                    i.is_some_and(|i| text == numbered(i))
                }
                None => ["HELLO ", "JOIN ", "QUIT "]
                    .iter()
                    .any(|k| l.starts_with(k)),
            };
            assert!(ok, "not a whole line: {l:?}");
        }
        assert!(!err || rest.is_empty(), "bytes after ERR: {rest:?}");
        // The last line is best effort: a socket with room for only part
        // of it may cut it short, but only at a line boundary.
        let cut_err = !rest.is_empty() && "ERR slow-consumer\n".starts_with(rest);
        assert!(
            cut_err || !rest.contains("ERR"),
            "ERR in a partial line: {rest:?}"
        );
        errs += usize::from(err);
        partial += usize::from(!rest.is_empty());
    }
    eprintln!("{n} cut: {errs} told ERR slow-consumer, {partial} in mid-line");
}

#[test]
fn broadcast_reaches_2000_clients() {
    let srv = Server::start(&[]);
    // Connect all at once (HELLOs read later), as a burst of real clients would.
    let mut clients: Vec<Client> = (0..2000).map(|_| Client::connect(srv.addr)).collect();
    for c in clients.iter_mut() {
        assert!(c.line().starts_with("HELLO "));
    }
    let mut talker = srv.join();
    talker.send("to everyone");
    let want = format!("MSG {} to everyone", talker.nick);
    for c in clients.iter_mut() {
        loop {
            let l = c.line();
            if l == want {
                break;
            }
            assert!(l.starts_with("JOIN "), "unexpected {l}");
        }
    }
}

#[test]
fn reset_announces_quit() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let b = srv.join();
    a.line();
    common::set_linger_zero(b.stream());
    let nick = b.nick.clone();
    drop(b);
    a.expect(&[&format!("QUIT {nick}")]);
}

#[test]
fn line_split_across_many_segments() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    for byte in b"split into many segments\r\n" {
        a.raw(&[*byte]);
        thread::sleep(Duration::from_millis(2));
    }
    b.expect(&[&format!("MSG {} split into many segments", a.nick)]);
}

#[test]
fn half_close_handles_lines_then_closes() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    b.raw(b"first\nsecond\n/who\nunfinished");
    b.half_close();
    let mut nicks = [a.nick.clone(), b.nick.clone()];
    nicks.sort_by_key(|n| n.to_ascii_lowercase());
    b.expect(&[&format!("WHO lobby {} {}", nicks[0], nicks[1])]);
    b.expect_fin();
    a.expect(&[
        &format!("MSG {} first", b.nick),
        &format!("MSG {} second", b.nick),
        &format!("QUIT {}", b.nick),
    ]);
    a.expect_nothing();
}

#[test]
fn idle_client_is_pinged_then_cut() {
    let srv = Server::start(&["--idle-timeout", "1"]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    let gone = b.nick.clone();
    // a answers every PING, and hears why b left.
    let polite = thread::spawn(move || loop {
        let l = a.line();
        if let Some(token) = l.strip_prefix("PING ") {
            a.send(&format!("/pong {token}"));
            continue;
        }
        assert_eq!(l, format!("QUIT {gone} idle-timeout"));
        return;
    });
    let ping = b.line();
    assert!(ping.starts_with("PING "), "{ping}");
    // b stays silent: after one more idle period it is cut.
    b.expect(&["ERR idle-timeout"]);
    b.expect_fin();
    polite.join().expect("polite client");
}

#[test]
fn unfinished_line_times_out() {
    let srv = Server::start(&["--line-timeout", "1"]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    b.raw(b"never finished");
    b.expect(&["ERR line-timeout"]);
    b.send("fresh");
    a.expect(&[&format!("MSG {} fresh", b.nick)]);
}

/// `--line-timeout` counts from the first byte of the line that is
/// unfinished now: a client whose every line takes 0.5 s, each read ending
/// one line and starting the next, never times out.
#[test]
fn line_timeout_counts_from_the_unfinished_lines_first_byte() {
    let srv = Server::start(&["--line-timeout", "2"]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    b.raw(b"l0");
    for i in 1..=8 {
        thread::sleep(Duration::from_millis(500));
        b.raw(format!("-end\nl{i}").as_bytes());
    }
    b.raw(b"-end\n");
    for i in 0..=8 {
        a.expect(&[&format!("MSG {} l{i}-end", b.nick)]);
    }
    b.expect_nothing(); // no `ERR line-timeout` came first
}

#[test]
fn shutdown_delivers_queued_lines_then_says_so() {
    let mut srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    for i in 0..100 {
        b.send(&format!("line {i}"));
    }
    b.expect_nothing(); // every line has been handled by the server
    srv.signal(libc::SIGTERM);
    for i in 0..100 {
        a.expect(&[&format!("MSG {} line {i}", b.nick)]);
    }
    a.expect(&["ERR server-shutdown"]);
    a.expect_fin();
    b.expect(&["ERR server-shutdown"]);
    b.expect_fin();
    assert_eq!(srv.wait_exit(), 0);
}

/// A client that sent `/quit` and has not yet read its `BYE` when the
/// server shuts down gets everything owed, `BYE` last, then a clean close:
/// no `ERR server-shutdown` after its `BYE`.
#[test]
fn quit_just_before_shutdown_gets_bye_and_no_shutdown_error() {
    let mut srv = Server::start(&["--sndbuf", "4096"]);
    let mut tx = srv.join();
    let mut q = connect_tiny_rcvbuf(&srv);
    tx.expect(&[&format!("JOIN {}", q.nick)]);
    // 200 KB: far more than the kernel's buffers hold for `q`, which does
    // not read yet, so the rest (and then its `BYE`) waits in the server.
    let payload = "p".repeat(1000);
    for i in 0..200 {
        tx.send(&format!("{i} {payload}"));
    }
    tx.expect_nothing(); // every line is queued for `q`
    q.send("/quit");
    tx.expect(&[&format!("QUIT {}", q.nick)]);
    srv.signal(libc::SIGTERM);
    for i in 0..200 {
        q.expect(&[&format!("MSG {} {i} {payload}", tx.nick)]);
    }
    q.expect(&["BYE"]);
    q.expect_fin();
    tx.expect(&["ERR server-shutdown"]);
    tx.expect_fin();
    assert_eq!(srv.wait_exit(), 0);
}

#[test]
fn pong_keeps_a_client() {
    let srv = Server::start(&["--idle-timeout", "1"]);
    let mut a = srv.join();
    let mut pings = 0;
    while pings < 3 {
        let l = a.line();
        let token = l.strip_prefix("PING ").expect("only PINGs arrive");
        a.send(&format!("/pong {token}"));
        pings += 1;
    }
    // Still connected and served after three idle periods.
    a.send("/ping still-here");
    loop {
        let l = a.line();
        if l == "PONG still-here" {
            break;
        }
        assert!(l.starts_with("PING "), "{l}");
    }
}
