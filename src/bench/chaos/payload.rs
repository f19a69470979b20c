//! The bytes a chaos client sends: chat lines good and bad, commands, and
//! what it throws at the TLS port. Pure, no I/O: each function appends to
//! a buffer, drawing from the client's own [`Rng`].

use super::rng::Rng;

/// The rooms chaos clients wander between; the checkers' room is one.
pub const ROOMS: [&str; 6] = ["lobby", "den", "attic", "cellar", "porch", "roof"];
/// Longer than any line the server accepts by default (`--max-line` 4096).
const LONG_MIN: usize = 4097;
const LONG_MAX: usize = 20_000;

const WORDS: [&str; 19] = [
    "hello",
    "anyone",
    "here",
    "epoll",
    "edge",
    "level",
    "ready",
    "again",
    "socket",
    "drain",
    "budget",
    "queue",
    "linger",
    "ping",
    "lorem",
    "ipsum",
    "naïve",
    "日本語",
    "🦀",
];

/// A chaos nick: `c` and a number below `2 * conns`, so some are taken and
/// some are free, and none looks like a checker's.
pub fn nick(rng: &mut Rng, conns: usize) -> String {
    format!("c{}", rng.below(2 * conns as u64))
}

/// Appends a room line of whole words, some of them not ASCII (now and
/// then a long one, near the default `--max-line`), ended by `\n` or
/// `\r\n`; now and then an empty line, or a line escaped as `//text`.
pub fn talk(out: &mut Vec<u8>, rng: &mut Rng) {
    match rng.below(20) {
        0 => return out.extend_from_slice(b"\r\n"),
        1 => out.extend_from_slice(b"//"),
        _ => {}
    }
    let want = match rng.chance(1, 30) {
        true => rng.size(1000, 4000),
        false => rng.size(1, 120),
    };
    let start = out.len();
    loop {
        let word = rng.pick(&WORDS).as_bytes();
        let room = out.len() - start + word.len() < want;
        if out.len() > start && !room {
            break;
        }
        if out.len() > start {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
    if rng.chance(1, 5) {
        out.push(b'\r');
    }
    out.push(b'\n');
}

/// Appends `/msg TARGET text`: mostly to a chaos nick, sometimes to a
/// checker (which ignores it).
pub fn dm(out: &mut Vec<u8>, rng: &mut Rng, conns: usize, checkers: usize) {
    let target = if checkers > 0 && rng.chance(1, 5) {
        format!("chk{}", rng.below(checkers as u64))
    } else {
        nick(rng, conns)
    };
    out.extend_from_slice(format!("/msg {target} ").as_bytes());
    talk(out, rng);
}

/// Appends `/join ROOM`, now and then to a room whose name is not allowed.
pub fn join(out: &mut Vec<u8>, rng: &mut Rng) {
    if rng.chance(1, 10) {
        out.extend_from_slice(b"/join no.such/room!\n");
    } else {
        out.extend_from_slice(format!("/join {}\n", rng.pick(&ROOMS)).as_bytes());
    }
}

/// Appends one harmless query.
pub fn query(out: &mut Vec<u8>, rng: &mut Rng) {
    let q = match rng.below(5) {
        0 => "/who\n".to_string(),
        1 => "/rooms\n".to_string(),
        2 => "/stats\n".to_string(),
        3 => "/help\n".to_string(),
        _ => format!("/ping t{}\n", rng.below(1_000_000)),
    };
    out.extend_from_slice(q.as_bytes());
}

/// Appends 50 to 150 requests whose answers come back to the sender
/// (`/help`, `/who`, `/rooms`): from a client that does not read, they
/// pile up in the server until it is cut as a slow consumer.
pub fn unread_answers(out: &mut Vec<u8>, rng: &mut Rng) {
    let ask: [&[u8]; 3] = [b"/help\n", b"/who\n", b"/rooms\n"];
    for _ in 0..rng.size(50, 150) {
        out.extend_from_slice(rng.pick(&ask));
    }
}

/// Appends `/nick d<me>` (a nick only client `me` uses), then 50 to 150
/// direct messages of 2000 to 4000 bytes to itself: the kernel's send
/// buffer for a client that does not read grows to megabytes on loopback
/// (`tcp_wmem`), and this fills it, and then `--max-output`, within
/// seconds.
pub fn dm_flood(out: &mut Vec<u8>, rng: &mut Rng, me: usize) {
    out.extend_from_slice(format!("/nick d{me}\n").as_bytes());
    for _ in 0..rng.size(50, 150) {
        out.extend_from_slice(format!("/msg d{me} ").as_bytes());
        out.resize(out.len() + rng.size(2000, 4000), b'f');
        out.push(b'\n');
    }
}

/// Appends a line that is not UTF-8.
pub fn bad_utf8(out: &mut Vec<u8>, rng: &mut Rng) {
    let bad: [&[u8]; 4] = [b"\xff\xfe", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80"];
    out.extend_from_slice(b"bytes ");
    out.extend_from_slice(rng.pick(&bad));
    out.extend_from_slice(b" end\n");
}

/// Appends a line of control characters and terminal escapes (valid UTF-8:
/// the server relays it with each control character replaced).
pub fn control(out: &mut Vec<u8>, rng: &mut Rng) {
    out.extend_from_slice(b"ctl ");
    for _ in 0..rng.size(1, 20) {
        match rng.below(4) {
            0 => out.extend_from_slice(b"\x1b[2J\x1b[31m"),
            1 => match rng.below(32) as u8 {
                b'\n' => out.push(0), // one line: any other C0 byte, NUL included
                b => out.push(b),
            },
            2 => out.push(0x7f),
            _ => out.extend_from_slice("\u{202e}\u{1f600}".as_bytes()),
        }
    }
    out.push(b'\n');
}

/// Appends a line longer than the default `--max-line`.
pub fn long_line(out: &mut Vec<u8>, rng: &mut Rng) {
    let n = rng.size(LONG_MIN, LONG_MAX);
    out.resize(out.len() + n, b'x');
    out.push(b'\n');
}

/// Appends an unknown command, or a known one with bad arguments.
pub fn bad_command(out: &mut Vec<u8>, rng: &mut Rng) {
    let c: [&[u8]; 9] = [
        b"/frobnicate\n",
        b"/nick\n",
        b"/nick abcdefghijklmnopqrstuvwxyz0123456789\n",
        b"/nick two words\n",
        b"/nick bad!nick\n",
        b"/join\n",
        b"/msg\n",
        b"/who extra\n",
        b"/msg nobody-here hi\n",
    ];
    out.extend_from_slice(rng.pick(&c));
}

/// Appends bytes for the TLS port that are not TLS at all.
pub fn tls_garbage(out: &mut Vec<u8>, rng: &mut Rng) {
    match rng.below(3) {
        0 => out.extend_from_slice(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
        1 => out.extend_from_slice(b"/nick plaintext\nhello\n"),
        _ => {
            for _ in 0..rng.size(1, 600) {
                out.push(rng.next_u64() as u8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn talk_is_one_plain_line() {
        let mut rng = Rng::new(5, 0);
        for _ in 0..500 {
            let mut out = Vec::new();
            talk(&mut out, &mut rng);
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            assert_eq!(out.last(), Some(&b'\n'));
            assert!(out.len() <= 4000 + 2 + 2, "{}", out.len());
            let text = std::str::from_utf8(&out).expect("UTF-8");
            let text = text.trim_end_matches('\n').trim_end_matches('\r');
            assert!(!text.starts_with('/') || text.starts_with("//"), "{text}");
            assert!(!text.starts_with(' '), "{text:?}");
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
    }

    #[test]
    fn bad_lines_are_what_they_claim() {
        let mut rng = Rng::new(6, 0);
        for _ in 0..100 {
            let mut out = Vec::new();
            bad_utf8(&mut out, &mut rng);
            assert!(std::str::from_utf8(&out).is_err());
            let mut out = Vec::new();
            control(&mut out, &mut rng);
            assert!(std::str::from_utf8(&out).is_ok());
            assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            assert!(out.len() > "ctl \n".len());
            let mut out = Vec::new();
            long_line(&mut out, &mut rng);
            assert!(out.len() > 4097 && out.ends_with(b"x\n"));
        }
    }

    #[test]
    fn chaos_nicks_never_look_like_checkers() {
        let mut rng = Rng::new(7, 0);
        for _ in 0..100 {
            let n = nick(&mut rng, 10);
            assert!(n.starts_with('c') && !n.starts_with("chk"), "{n}");
            assert!(n[1..].parse::<u64>().unwrap() < 20);
        }
    }
}
