//! Router tests, grouped by command, over a recording outbox: who receives
//! which bytes, exactly.

use std::collections::BTreeMap;
use std::rc::Rc;

use proptest::prelude::*;

use super::record::Record;
use super::router::Router;

/// Records every line per recipient, and which keys were closed.
#[derive(Default)]
struct Rec {
    got: BTreeMap<usize, Vec<String>>,
    closed: Vec<usize>,
    /// Buffers handed out, to check one line is shared, not copied.
    bufs: Vec<Rc<[u8]>>,
}

impl Record for Rec {
    fn record(&mut self, to: usize, line: &Rc<[u8]>) {
        let s = String::from_utf8(line.to_vec()).unwrap();
        self.got.entry(to).or_default().push(s);
        self.bufs.push(line.clone());
    }
    fn closed(&mut self, key: usize) {
        self.closed.push(key);
    }
}

impl Rec {
    fn take(&mut self, key: usize) -> Vec<String> {
        self.got.remove(&key).unwrap_or_default()
    }
}

fn setup(n: usize) -> (Router, Rec) {
    let mut r = Router::new();
    let mut o = Rec::default();
    for k in 0..n {
        r.connect(k, &mut o);
    }
    o.got.clear();
    o.bufs.clear();
    (r, o)
}

fn lines(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| format!("{s}\n")).collect()
}

#[test]
fn connect_says_hello_and_join() {
    let mut r = Router::new();
    let mut o = Rec::default();
    r.connect(0, &mut o);
    r.connect(1, &mut o);
    assert_eq!(o.take(0), lines(&["HELLO guest1 lobby", "JOIN guest2"]));
    assert_eq!(o.take(1), lines(&["HELLO guest2 lobby"]));
}

#[test]
fn guest_numbers_are_never_reused() {
    let (mut r, mut o) = setup(2);
    r.disconnect(1, None, true, &mut o);
    r.connect(1, &mut o);
    assert_eq!(o.take(1), lines(&["HELLO guest3 lobby"]));
    // A guest number someone took by hand is skipped.
    r.line(0, b"/nick guest4", &mut o);
    r.connect(2, &mut o);
    assert_eq!(o.take(2), lines(&["HELLO guest5 lobby"]));
}

#[test]
fn text_goes_to_everyone_else_once_encoded() {
    let (mut r, mut o) = setup(3);
    r.line(0, b"hi all", &mut o);
    assert_eq!(o.take(0), Vec::<String>::new());
    assert_eq!(o.take(1), lines(&["MSG guest1 hi all"]));
    assert_eq!(o.take(2), lines(&["MSG guest1 hi all"]));
    assert!(
        Rc::ptr_eq(&o.bufs[0], &o.bufs[1]),
        "one buffer shared by all"
    );
}

#[test]
fn escapes_and_control_codes() {
    let (mut r, mut o) = setup(2);
    r.line(0, b"//not a command", &mut o);
    r.line(0, "a\x1b[2Jb\tc\x7f".as_bytes(), &mut o);
    assert_eq!(
        o.take(1),
        lines(&[
            "MSG guest1 /not a command",
            "MSG guest1 a\u{FFFD}[2Jb\tc\u{FFFD}"
        ])
    );
}

#[test]
fn nick_rules() {
    let (mut r, mut o) = setup(2);
    r.line(0, b"/nick Alice", &mut o);
    assert_eq!(o.take(0), lines(&["OK nick Alice"]));
    assert_eq!(o.take(1), lines(&["NICK guest1 Alice"]));
    r.line(1, b"/nick alice", &mut o);
    r.line(1, b"/nick bad!", &mut o);
    r.line(1, b"/nick", &mut o);
    let long = format!("/nick {}", "x".repeat(33));
    r.line(1, long.as_bytes(), &mut o);
    assert_eq!(
        o.take(1),
        lines(&[
            "ERR nick-in-use",
            "ERR bad-nick",
            "ERR bad-args",
            "ERR bad-nick"
        ])
    );
    // Changing only the case of one's own nick is allowed.
    r.line(0, b"/nick ALICE", &mut o);
    assert_eq!(o.take(0), lines(&["OK nick ALICE"]));
    assert_eq!(o.take(1), lines(&["NICK Alice ALICE"]));
}

#[test]
fn direct_messages() {
    let (mut r, mut o) = setup(3);
    r.line(1, b"/nick bob", &mut o);
    o.got.clear();
    r.line(0, b"/msg BOB psst  there", &mut o);
    assert_eq!(o.take(0), lines(&["OK msg bob"]));
    assert_eq!(o.take(1), lines(&["DM guest1 psst  there"]));
    assert_eq!(o.take(2), Vec::<String>::new());
    r.line(0, b"/msg nobody hi", &mut o);
    r.line(0, b"/msg bob", &mut o);
    assert_eq!(o.take(0), lines(&["ERR no-such-nick", "ERR bad-args"]));
}

#[test]
fn join_part_who_rooms() {
    let (mut r, mut o) = setup(3);
    r.line(0, b"/join Den", &mut o);
    assert_eq!(o.take(0), lines(&["OK join Den", "WHO Den guest1"]));
    assert_eq!(o.take(1), lines(&["PART guest1"]));
    r.line(1, b"/join den", &mut o);
    assert_eq!(o.take(1), lines(&["OK join Den", "WHO Den guest1 guest2"]));
    assert_eq!(o.take(0), lines(&["JOIN guest2"]));
    assert_eq!(o.take(2), lines(&["PART guest1", "PART guest2"]));
    r.line(2, b"/rooms", &mut o);
    assert_eq!(o.take(2), lines(&["ROOMS Den:2 lobby:1"]));
    r.line(2, b"/join x.y", &mut o);
    assert_eq!(o.take(2), lines(&["ERR bad-room"]));
    // The lobby empties and ceases to exist.
    r.line(2, b"/join den", &mut o);
    o.got.clear();
    r.line(2, b"/rooms", &mut o);
    assert_eq!(o.take(2), lines(&["ROOMS Den:3"]));
}

#[test]
fn who_is_sorted_case_insensitively() {
    let (mut r, mut o) = setup(3);
    r.line(0, b"/nick zed", &mut o);
    r.line(1, b"/nick Amy", &mut o);
    r.line(2, b"/nick bob", &mut o);
    o.got.clear();
    r.line(2, b"/who", &mut o);
    assert_eq!(o.take(2), lines(&["WHO lobby Amy bob zed"]));
}

#[test]
fn ping_stats_help_unknown() {
    let (mut r, mut o) = setup(1);
    r.line(0, b"/ping", &mut o);
    r.line(0, b"/ping abc", &mut o);
    r.line(0, b"/pong abc", &mut o);
    r.line(0, b"/what", &mut o);
    assert_eq!(
        o.take(0),
        lines(&["PONG", "PONG abc", "ERR unknown-command /what"])
    );
    r.line(0, b"/stats", &mut o);
    let s = o.take(0).remove(0);
    for k in [
        "clients=1",
        "rooms=1",
        "msgs_in=5",
        "msgs_out=",
        "bytes_in=",
        "bytes_out=",
        "uptime_s=",
    ] {
        assert!(s.contains(k), "{s} lacks {k}");
    }
    assert!(!s.contains("udp_"), "no UDP counters without UDP: {s}");
    r.stats.udp = Some(crate::udp::UdpStats {
        echoed: 4,
        bad_port: 3,
        over_rate: 2,
        truncated: 1,
    });
    r.line(0, b"/stats", &mut o);
    let s = o.take(0).remove(0);
    assert!(
        s.trim_end()
            .ends_with(" udp_echoed=4 udp_bad_port=3 udp_over_rate=2 udp_truncated=1"),
        "{s}"
    );
    r.line(0, b"/HELP", &mut o);
    let help = o.take(0);
    assert_eq!(help.len(), 6);
    for l in help {
        let l = l.strip_suffix('\n').expect("a line");
        assert!(l.starts_with("HELP "), "{l:?}");
        assert!(!l.contains("  ") && !l.ends_with(' '), "one space: {l:?}");
    }
}

#[test]
fn quit_and_disconnects() {
    let (mut r, mut o) = setup(3);
    r.line(0, b"/quit see you", &mut o);
    assert_eq!(o.take(0), lines(&["BYE"]));
    assert_eq!(o.take(1), lines(&["QUIT guest1 see you"]));
    assert_eq!(o.closed, vec![0]);
    r.disconnect(1, None, true, &mut o);
    assert_eq!(o.take(2), lines(&["QUIT guest1 see you", "QUIT guest2"]));
    r.disconnect(2, Some("slow-consumer"), true, &mut o);
    r.connect(3, &mut o);
    assert_eq!(o.take(3), lines(&["HELLO guest4 lobby"]));
    r.connect(4, &mut o);
    o.got.clear();
    r.disconnect(3, None, false, &mut o);
    assert!(o.got.is_empty(), "a quiet disconnect tells nobody");
    assert_eq!(r.clients(), 1, "only key 4 is left");
}

#[test]
fn bad_utf8_is_refused() {
    let (mut r, mut o) = setup(2);
    r.line(0, b"\xff\xfeabc", &mut o);
    assert_eq!(o.take(0), lines(&["ERR bad-utf8"]));
    assert_eq!(o.take(1), Vec::<String>::new());
}

proptest! {
    #[test]
    fn router_never_panics(cmds in proptest::collection::vec((0usize..4, proptest::collection::vec(any::<u8>(), 0..40)), 0..60),
                           words in proptest::collection::vec(prop_oneof![
                               Just("/nick a".to_string()), Just("/join r".to_string()), Just("/quit x".to_string()),
                               Just("/msg a hi".to_string()), Just("/who".to_string()), Just("/rooms".to_string()),
                               Just("/NICK A".to_string()), Just("/join R".to_string()), "/[a-z]{0,6} ?[ -~]{0,10}"], 0..40)) {
        let (mut r, mut o) = setup(4);
        for (k, bytes) in &cmds {
            r.line(*k, bytes, &mut o);
        }
        for (i, w) in words.iter().enumerate() {
            r.line(i % 4, w.as_bytes(), &mut o);
            if i % 7 == 3 {
                r.disconnect(i % 4, None, true, &mut o);
                r.connect(i % 4, &mut o);
            }
        }
        // Every line the router ever produced is one protocol line.
        for ls in o.got.values() {
            for l in ls {
                prop_assert!(l.ends_with('\n') && l.matches('\n').count() == 1);
                prop_assert!(l.trim_end().split(' ').next().is_some_and(|k| k.bytes().all(|b| b.is_ascii_uppercase())));
            }
        }
    }
}
