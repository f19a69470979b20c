//! The NATS client protocol, as much of it as a pub/sub load needs: what a
//! client sends (`CONNECT`, `SUB`, `PUB`, `PING`, `PONG`), and a parser for
//! what the server sends (`INFO`, `MSG`, `PING`, `PONG`, `+OK`, `-ERR`).
//! Every operation is a line ending in `\r\n`; a `MSG` line is followed by
//! its payload, whose length it gives, and another `\r\n`. Pure, no I/O;
//! the parser borrows from the buffer it is given and allocates nothing.

use super::chatline::push_decimal;

/// What a client says first: no `+OK` after every operation, and none of
/// its own messages back.
pub const CONNECT: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\n";

/// One operation from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// A message on a subject this connection subscribed to.
    Msg {
        subject: &'a [u8],
        sid: &'a [u8],
        payload: &'a [u8],
    },
    /// The server's greeting (its JSON is not read).
    Info,
    /// The server asks for a `PONG`.
    Ping,
    /// The answer to our `PING`: everything sent before it was processed.
    Pong,
    /// `+OK` (only in verbose mode).
    Ok,
    /// `-ERR '...'`: the text after `-ERR`, trimmed.
    Err(&'a [u8]),
}

/// What the start of a buffer holds: one whole operation and the bytes it
/// took, a need for more, or not the protocol.
pub type Parsed<'a> = super::deframe::Parsed<Op<'a>>;

fn is_space(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

/// A payload length: 1 to 19 decimal digits.
fn length(digits: &[u8]) -> Option<usize> {
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits.iter().try_fold(0usize, |acc, &d| {
        acc.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// The operation at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        return Parsed::Need(0);
    };
    let line = buf[..nl].strip_suffix(b"\r").unwrap_or(&buf[..nl]);
    let mut words = line.split(is_space).filter(|w| !w.is_empty());
    let op = words.next().unwrap_or_default();
    let after = nl + 1;
    let done = |op| Parsed::Done(op, after);
    if op.eq_ignore_ascii_case(b"MSG") {
        return msg(buf, after, words);
    }
    if op.eq_ignore_ascii_case(b"PING") {
        done(Op::Ping)
    } else if op.eq_ignore_ascii_case(b"PONG") {
        done(Op::Pong)
    } else if op.eq_ignore_ascii_case(b"+OK") {
        done(Op::Ok)
    } else if op.eq_ignore_ascii_case(b"INFO") {
        done(Op::Info)
    } else if op.eq_ignore_ascii_case(b"-ERR") {
        let text = line.get(4..).unwrap_or_default();
        let start = text.iter().position(|b| !is_space(b)).unwrap_or(text.len());
        done(Op::Err(&text[start..]))
    } else {
        Parsed::Bad("an operation that is none of MSG PING PONG +OK -ERR INFO")
    }
}

/// `MSG <subject> <sid> [reply-to] <#bytes>`, whose line ends at `after`.
fn msg<'a>(buf: &'a [u8], after: usize, mut words: impl Iterator<Item = &'a [u8]>) -> Parsed<'a> {
    let mut args: [&[u8]; 4] = [&[]; 4];
    let mut n = 0;
    for w in words.by_ref() {
        if n == args.len() {
            return Parsed::Bad("a MSG line with more than 4 arguments");
        }
        args[n] = w;
        n += 1;
    }
    let (subject, sid, len) = match args[..n] {
        [subject, sid, len] | [subject, sid, _, len] => (subject, sid, len),
        _ => return Parsed::Bad("a MSG line with fewer than 3 arguments"),
    };
    let Some(len) = length(len) else {
        return Parsed::Bad("a MSG line whose length is not a number");
    };
    let Some(end) = after.checked_add(len) else {
        return Parsed::Bad("a MSG payload too long");
    };
    let Some(tail) = buf.get(end..end + 2) else {
        return Parsed::Need(end + 2);
    };
    if tail != b"\r\n" {
        return Parsed::Bad("a MSG payload not followed by \\r\\n");
    }
    let payload = &buf[after..end];
    Parsed::Done(
        Op::Msg {
            subject,
            sid,
            payload,
        },
        end + 2,
    )
}

/// Appends `SUB <subject> <sid>`.
pub fn sub(out: &mut Vec<u8>, subject: &[u8], sid: u64) {
    out.extend_from_slice(b"SUB ");
    out.extend_from_slice(subject);
    out.push(b' ');
    push_decimal(out, sid);
    out.extend_from_slice(b"\r\n");
}

/// Appends `PING`.
pub fn ping(out: &mut Vec<u8>) {
    out.extend_from_slice(b"PING\r\n");
}

/// Appends `PONG`.
pub fn pong(out: &mut Vec<u8>) {
    out.extend_from_slice(b"PONG\r\n");
}

/// Appends the line of `PUB <subject> <len>`: the caller appends the
/// payload, then [`pub_tail`].
pub fn pub_head(out: &mut Vec<u8>, subject: &[u8], len: usize) {
    out.extend_from_slice(b"PUB ");
    out.extend_from_slice(subject);
    out.push(b' ');
    push_decimal(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// Ends a `PUB` begun with [`pub_head`].
pub fn pub_tail(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An operation as the tests compare it: owned.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Msg(Vec<u8>, Vec<u8>, Vec<u8>),
        Info,
        Ping,
        Pong,
        Ok,
        Err(Vec<u8>),
    }

    fn owned(op: Op<'_>) -> Owned {
        match op {
            Op::Msg {
                subject,
                sid,
                payload,
            } => Owned::Msg(subject.into(), sid.into(), payload.into()),
            Op::Info => Owned::Info,
            Op::Ping => Owned::Ping,
            Op::Pong => Owned::Pong,
            Op::Ok => Owned::Ok,
            Op::Err(e) => Owned::Err(e.into()),
        }
    }

    fn ops(pieces: &[&[u8]]) -> Result<Vec<Owned>, String> {
        super::super::deframe::frames(pieces, |b| parse(b).map(owned))
    }

    /// What a subscriber sees, payloads with `\r\n` and `MSG` inside.
    const STREAM: &[u8] = b"INFO {\"server_id\":\"x\",\"max_payload\":1048576}\r\n\
        PONG\r\nMSG a.b 1 6\r\n0 1\r\n\n\r\n\
        MSG a.b  1 reply.to 11\r\nMSG x 1 0\r\n\r\n\
        PING\r\n+OK\r\nmsg a.b 2 0\r\n\r\n\
        -ERR 'Slow Consumer'\r\n";

    fn want() -> Vec<Owned> {
        let msg = |sid: &[u8], p: &[u8]| Owned::Msg(b"a.b".to_vec(), sid.to_vec(), p.to_vec());
        vec![
            Owned::Info,
            Owned::Pong,
            msg(b"1", b"0 1\r\n\n"),
            msg(b"1", b"MSG x 1 0\r\n"),
            Owned::Ping,
            Owned::Ok,
            msg(b"2", b""),
            Owned::Err(b"'Slow Consumer'".to_vec()),
        ]
    }

    #[test]
    fn a_stream_split_at_every_offset_parses_the_same() {
        super::super::deframe::assert_every_split(STREAM, &want(), ops);
    }

    #[test]
    fn what_a_client_sends() {
        let mut out = CONNECT.to_vec();
        sub(&mut out, b"room", 7);
        ping(&mut out);
        pub_head(&mut out, b"room", 5);
        out.extend_from_slice(b"hello");
        pub_tail(&mut out);
        pong(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "CONNECT {\"verbose\":false,\"pedantic\":false,\"echo\":false}\r\n\
             SUB room 7\r\nPING\r\nPUB room 5\r\nhello\r\nPONG\r\n"
        );
    }

    #[test]
    fn incomplete_operations_say_what_they_need() {
        assert_eq!(parse(b""), Parsed::Need(0));
        assert_eq!(parse(b"MSG a 1 5"), Parsed::Need(0));
        assert_eq!(parse(b"MSG a 1 5\r\nhel"), Parsed::Need(18));
    }

    #[test]
    fn malformed_operations_are_errors() {
        for bad in [
            &b"HELLO\r\n"[..],
            b"\r\n",
            b"MSG a 1\r\n",
            b"MSG a 1 b c d\r\n",
            b"MSG a 1 -5\r\n",
            b"MSG a 1 99999999999999999999\r\n",
            b"MSG a 1 3\r\nabcd\r\n",
        ] {
            assert!(
                matches!(parse(bad), Parsed::Bad(_)),
                "{:?}: {:?}",
                String::from_utf8_lossy(bad),
                parse(bad)
            );
        }
    }
}
