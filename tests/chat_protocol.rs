//! Chat over real sockets: every row of PROTOCOL.md §2's table and every
//! `ERR` code, byte for byte.

mod chatkit;

use chatkit::Server;

#[test]
fn hello_join_and_room_text() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.expect(&[&format!("JOIN {}", b.nick)]);
    a.send("hello there");
    b.expect(&[&format!("MSG {} hello there", a.nick)]);
    a.expect_nothing(); // the sender gets no copy
    a.send("//slash");
    b.expect(&[&format!("MSG {} /slash", a.nick)]);
}

#[test]
fn guest_numbers_are_not_reused() {
    let srv = Server::start(&[]);
    let mut witness = srv.join();
    let a = srv.join();
    let first = a.nick.clone();
    witness.expect(&[&format!("JOIN {first}")]);
    drop(a);
    // Once the server has seen `a` leave, its number is free to reuse (if
    // numbers were reused): only then does the next client connect.
    witness.expect(&[&format!("QUIT {first}")]);
    let mut b = srv.join();
    b.expect_nothing();
    assert_ne!(b.nick, first);
}

#[test]
fn crlf_empty_lines_and_control_codes() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    a.raw(b"one\r\n\n\r\ntwo\n");
    a.raw("esc \x1b[31m del \x7f tab \t.\n".as_bytes());
    b.expect(&[
        &format!("MSG {} one", a.nick),
        &format!("MSG {} two", a.nick),
        &format!("MSG {} esc \u{FFFD}[31m del \u{FFFD} tab \t.", a.nick),
    ]);
}

/// C1 controls (U+0080 to U+009F) are terminal control codes too: an 8-bit
/// CSI (U+009B) is obeyed by some terminals like `ESC [`. Letters beyond
/// ASCII pass unchanged.
#[test]
fn c1_controls_are_scrubbed_too() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    a.raw("csi \u{9b}2J nel \u{85} é ü 漢\n".as_bytes());
    b.expect(&[&format!(
        "MSG {} csi \u{FFFD}2J nel \u{FFFD} é ü 漢",
        a.nick
    )]);
    a.send(&format!("/msg {} \u{9b}31m", b.nick));
    a.expect(&[&format!("OK msg {}", b.nick)]);
    b.expect(&[&format!("DM {} \u{FFFD}31m", a.nick)]);
}

#[test]
fn nick_command() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    a.send("/NICK Alice");
    a.expect(&["OK nick Alice"]);
    b.expect(&[&format!("NICK {} Alice", a.nick)]);
    b.send("/nick alice");
    b.send("/nick no.dots");
    b.send("/nick");
    b.expect(&["ERR nick-in-use", "ERR bad-nick", "ERR bad-args"]);
}

#[test]
fn direct_message() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    let mut c = srv.join();
    a.line();
    a.line();
    b.line();
    a.send(&format!("/msg {} just you", b.nick));
    a.expect(&[&format!("OK msg {}", b.nick)]);
    b.expect(&[&format!("DM {} just you", a.nick)]);
    c.expect_nothing();
    a.send("/msg nobody hi");
    a.send("/msg onlyname");
    a.expect(&["ERR no-such-nick", "ERR bad-args"]);
}

/// `/nick` and `/join` take exactly one argument; `/join` to the room one
/// is in answers as a join does, and nobody hears `PART` or `JOIN`.
#[test]
fn nick_and_join_take_one_argument() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.expect(&[&format!("JOIN {}", b.nick)]);
    a.send("/nick");
    a.send("/nick x y");
    a.send("/join");
    a.send("/join den attic");
    a.expect(&["ERR bad-args"; 4]);
    let mut nicks = [a.nick.clone(), b.nick.clone()];
    nicks.sort_by_key(|n| n.to_ascii_lowercase());
    a.send("/join LOBBY");
    a.expect(&[
        "OK join lobby",
        &format!("WHO lobby {} {}", nicks[0], nicks[1]),
    ]);
    b.expect_nothing(); // no NICK, PART or JOIN
}

#[test]
fn join_who_rooms() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    a.send("/nick zoe");
    a.expect(&["OK nick zoe"]);
    b.line();
    b.send("/nick Adam");
    b.expect(&["OK nick Adam"]);
    a.line();
    a.send("/who");
    a.expect(&["WHO lobby Adam zoe"]);
    a.send("/join Den");
    a.expect(&["OK join Den", "WHO Den zoe"]);
    b.expect(&["PART zoe"]);
    b.send("/rooms");
    b.expect(&["ROOMS Den:1 lobby:1"]);
    b.send("/join den");
    b.expect(&["OK join Den", "WHO Den Adam zoe"]);
    a.expect(&["JOIN Adam"]);
    b.send("/rooms");
    b.expect(&["ROOMS Den:2"]);
    b.send("/join bad/room");
    b.expect(&["ERR bad-room"]);
    a.send("in den");
    b.expect(&["MSG zoe in den"]);
}

#[test]
fn ping_pong_stats_help() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    a.send("/ping");
    a.send("/ping tok-1");
    a.send("/pong whatever");
    a.expect(&["PONG", "PONG tok-1"]);
    a.expect_nothing();
    a.send("/stats");
    let s = a.line();
    assert!(s.starts_with("STATS "), "{s}");
    for k in [
        "clients=1 ",
        "rooms=1 ",
        "msgs_in=",
        "msgs_out=",
        "bytes_in=",
        "bytes_out=",
        "uptime_s=",
    ] {
        assert!(s.contains(k), "{s} lacks {k}");
    }
    a.send("/help");
    for _ in 0..6 {
        let h = a.line();
        assert!(h.starts_with("HELP "), "{h:?}");
        // Fields are separated by one space (PROTOCOL.md §2).
        assert!(!h.contains("  ") && !h.ends_with(' '), "{h:?}");
    }
    a.expect_nothing();
}

#[test]
fn quit_says_bye_then_closes() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    a.send("/quit gone  fishing"); // kept as sent, inner spaces too
    a.expect(&["BYE"]);
    a.expect_fin();
    b.expect(&[&format!("QUIT {} gone  fishing", a.nick)]);
}

/// `/quit` alone: `BYE`, a clean close, and the room hears `QUIT <nick>`.
#[test]
fn quit_without_a_reason() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    a.send("/quit");
    a.expect(&["BYE"]);
    a.expect_fin();
    b.expect(&[&format!("QUIT {}", a.nick)]);
    b.expect_nothing();
}

#[test]
fn errors_for_bad_lines_keep_the_connection() {
    let srv = Server::start(&["--max-line", "16"]);
    let mut a = srv.join();
    a.send("/frob");
    a.send("/who extra");
    a.send("/rooms x");
    a.send("/stats x");
    a.send("/ping a b");
    a.raw(b"\xff\xfe not utf8\n");
    a.send(&"x".repeat(17));
    a.send(&"y".repeat(16));
    a.expect(&[
        "ERR unknown-command /frob",
        "ERR bad-args",
        "ERR bad-args",
        "ERR bad-args",
        "ERR bad-args",
        "ERR bad-utf8",
        "ERR line-too-long",
    ]);
    a.expect_nothing(); // 16 bytes is within the limit: relayed to nobody, no error
}

#[test]
fn long_line_is_discarded_to_newline_once() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    let big = "z".repeat(10_000);
    a.raw(big.as_bytes());
    a.raw(big.as_bytes());
    a.raw(b" tail\nafter\n");
    a.expect(&["ERR line-too-long"]);
    b.expect(&[&format!("MSG {} after", a.nick)]);
    a.expect_nothing();
}

#[test]
fn exactly_max_line_with_crlf_is_accepted() {
    let srv = Server::start(&[]);
    let mut a = srv.join();
    let mut b = srv.join();
    a.line();
    let text = "q".repeat(4096);
    a.raw(format!("{text}\r\n").as_bytes());
    b.expect(&[&format!("MSG {} {text}", a.nick)]);
    a.expect_nothing();
}

#[test]
fn server_full() {
    let srv = Server::start(&["--max-clients", "2"]);
    let mut a = srv.join();
    let b = srv.join();
    a.expect(&[&format!("JOIN {}", b.nick)]);
    let mut c = chatkit::Client::connect(srv.addr);
    c.expect(&["ERR server-full"]);
    c.expect_fin();
    let gone = b.nick.clone();
    drop(b);
    // Once the server has seen the slot free up, the next client is served.
    a.expect(&[&format!("QUIT {gone}")]);
    let mut d = srv.join();
    d.expect_nothing();
}
