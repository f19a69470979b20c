//! The Redis wire protocol (RESP2), as much of it as a pub/sub load needs:
//! the commands a client sends (`SUBSCRIBE`, `PUBLISH`, `PING`, each an
//! array of bulk strings), and a parser for what the server sends back:
//! simple strings, errors, integers, bulk strings and flat arrays of them,
//! among them the pushes `*3 message <channel> <payload>` and
//! `*3 subscribe <channel> <count>`. Pure, no I/O; the parser borrows from
//! the buffer it is given and allocates nothing.

use super::chatline::push_decimal;

/// The most elements of an array the parser reads (a pub/sub push has 3).
const MAX_ITEMS: usize = 8;

/// One reply or push from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply<'a> {
    /// A message published on a channel this connection subscribed to.
    Message {
        channel: &'a [u8],
        payload: &'a [u8],
    },
    /// The confirmation of a `SUBSCRIBE`: the channel is registered.
    Subscribed { channel: &'a [u8] },
    /// A simple string (`+PONG`, `+OK`), without `+` and `\r\n`.
    Simple(&'a [u8]),
    /// An integer (what `PUBLISH` answers: the receivers reached).
    Integer(i64),
    /// An error, without `-` and `\r\n`.
    Error(&'a [u8]),
    /// Any other well-formed reply (a bulk string, another array, a nil).
    Other,
}

/// What the start of a buffer holds: one whole reply and the bytes it
/// took, a need for more, or not the protocol.
pub type Parsed<'a> = super::deframe::Parsed<Reply<'a>>;

/// One element: a scalar, or the length of an array.
#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    Bulk(&'a [u8]),
    Nil,
    Int(i64),
    Simple(&'a [u8]),
    Error(&'a [u8]),
    Array(i64),
}

/// An element at `at`, and where the next one starts.
enum Elem<'a> {
    Got(Item<'a>, usize),
    Need(usize),
}

/// A decimal `i64`, `-` allowed.
fn integer(text: &[u8]) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, text),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    let v = digits.iter().try_fold(0i64, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(i64::from(d - b'0'))
    })?;
    Some(if neg { -v } else { v })
}

/// The element that starts at `at`.
fn elem(buf: &[u8], at: usize) -> Result<Elem<'_>, &'static str> {
    let rest = buf.get(at..).unwrap_or_default();
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return Ok(Elem::Need(0));
    };
    let Some(line) = rest[..nl].strip_suffix(b"\r") else {
        return Err("a line that ends without \\r\\n");
    };
    let Some((&kind, text)) = line.split_first() else {
        return Err("an empty line");
    };
    let next = at + nl + 1;
    let number = || integer(text).ok_or("a length or integer that is not a number");
    let item = match kind {
        b'+' => Item::Simple(text),
        b'-' => Item::Error(text),
        b':' => Item::Int(number()?),
        b'*' => Item::Array(number()?),
        b'$' => match usize::try_from(number()?) {
            Err(_) => Item::Nil, // $-1
            Ok(len) => {
                let end = next.checked_add(len).ok_or("a bulk string too long")?;
                let Some(after) = buf.get(end..end + 2) else {
                    return Ok(Elem::Need(end + 2));
                };
                if after != b"\r\n" {
                    return Err("a bulk string not followed by \\r\\n");
                }
                return Ok(Elem::Got(Item::Bulk(&buf[next..end]), end + 2));
            }
        },
        _ => return Err("a reply that starts with none of + - : $ *"),
    };
    Ok(Elem::Got(item, next))
}

/// The reply at the start of `buf`.
pub fn parse(buf: &[u8]) -> Parsed<'_> {
    match parse_reply(buf) {
        Ok(p) => p,
        Err(why) => Parsed::Bad(why),
    }
}

fn parse_reply(buf: &[u8]) -> Result<Parsed<'_>, &'static str> {
    let (first, mut at) = match elem(buf, 0)? {
        Elem::Need(n) => return Ok(Parsed::Need(n)),
        Elem::Got(item, next) => (item, next),
    };
    let n = match first {
        Item::Array(n) if n > MAX_ITEMS as i64 => return Err("an array of more than 8 elements"),
        Item::Array(n) => usize::try_from(n).unwrap_or(0), // *-1: a nil array
        Item::Simple(s) => return Ok(Parsed::Done(Reply::Simple(s), at)),
        Item::Error(e) => return Ok(Parsed::Done(Reply::Error(e), at)),
        Item::Int(i) => return Ok(Parsed::Done(Reply::Integer(i), at)),
        Item::Bulk(_) | Item::Nil => return Ok(Parsed::Done(Reply::Other, at)),
    };
    let mut items = [Item::Nil; MAX_ITEMS];
    for slot in items.iter_mut().take(n) {
        match elem(buf, at)? {
            Elem::Need(need) => return Ok(Parsed::Need(need)),
            Elem::Got(Item::Array(_), _) => return Err("a nested array"),
            Elem::Got(item, next) => (*slot, at) = (item, next),
        }
    }
    let reply = match items[..n] {
        [Item::Bulk(kind), Item::Bulk(channel), Item::Bulk(payload)]
            if kind.eq_ignore_ascii_case(b"message") =>
        {
            Reply::Message { channel, payload }
        }
        [Item::Bulk(kind), Item::Bulk(channel), Item::Int(_)]
            if kind.eq_ignore_ascii_case(b"subscribe") =>
        {
            Reply::Subscribed { channel }
        }
        _ => Reply::Other,
    };
    Ok(Parsed::Done(reply, at))
}

/// Appends one bulk string.
fn bulk(out: &mut Vec<u8>, s: &[u8]) {
    bulk_head(out, s.len());
    out.extend_from_slice(s);
    out.extend_from_slice(b"\r\n");
}

/// Appends a bulk string's header: its body of `len` bytes and `\r\n`
/// follow.
fn bulk_head(out: &mut Vec<u8>, len: usize) {
    out.push(b'$');
    push_decimal(out, len as u64);
    out.extend_from_slice(b"\r\n");
}

/// Appends `SUBSCRIBE <channel>`.
pub fn subscribe(out: &mut Vec<u8>, channel: &[u8]) {
    out.extend_from_slice(b"*2\r\n");
    bulk(out, b"SUBSCRIBE");
    bulk(out, channel);
}

/// Appends `PING`.
pub fn ping(out: &mut Vec<u8>) {
    out.extend_from_slice(b"*1\r\n");
    bulk(out, b"PING");
}

/// Appends `PUBLISH <channel>` and the header of a payload of `len` bytes:
/// the caller appends the payload, then [`publish_tail`].
pub fn publish_head(out: &mut Vec<u8>, channel: &[u8], len: usize) {
    out.extend_from_slice(b"*3\r\n");
    bulk(out, b"PUBLISH");
    bulk(out, channel);
    bulk_head(out, len);
}

/// Ends a `PUBLISH` begun with [`publish_head`].
pub fn publish_tail(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply as the tests compare it: owned.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Owned {
        Message(Vec<u8>, Vec<u8>),
        Subscribed(Vec<u8>),
        Simple(Vec<u8>),
        Integer(i64),
        Error(Vec<u8>),
        Other,
    }

    fn owned(r: Reply<'_>) -> Owned {
        match r {
            Reply::Message { channel, payload } => Owned::Message(channel.into(), payload.into()),
            Reply::Subscribed { channel } => Owned::Subscribed(channel.into()),
            Reply::Simple(s) => Owned::Simple(s.into()),
            Reply::Integer(i) => Owned::Integer(i),
            Reply::Error(e) => Owned::Error(e.into()),
            Reply::Other => Owned::Other,
        }
    }

    fn replies(pieces: &[&[u8]]) -> Result<Vec<Owned>, String> {
        super::super::deframe::frames(pieces, |b| parse(b).map(owned))
    }

    /// What a subscriber and a publisher see, payloads with `\r\n` inside.
    const STREAM: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n\
        *3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$6\r\n0 1\r\n\n\r\n\
        :3\r\n+PONG\r\n$-1\r\n*-1\r\n$3\r\nabc\r\n*0\r\n\
        *3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$0\r\n\r\n\
        -ERR unknown command 'X'\r\n";

    fn want() -> Vec<Owned> {
        vec![
            Owned::Subscribed(b"ch".to_vec()),
            Owned::Message(b"ch".to_vec(), b"0 1\r\n\n".to_vec()),
            Owned::Integer(3),
            Owned::Simple(b"PONG".to_vec()),
            Owned::Other,
            Owned::Other,
            Owned::Other,
            Owned::Other,
            Owned::Message(b"ch".to_vec(), Vec::new()),
            Owned::Error(b"ERR unknown command 'X'".to_vec()),
        ]
    }

    #[test]
    fn a_stream_split_at_every_offset_parses_the_same() {
        super::super::deframe::assert_every_split(STREAM, &want(), replies);
    }

    #[test]
    fn what_a_client_sends_parses_back() {
        let mut out = Vec::new();
        subscribe(&mut out, b"room");
        ping(&mut out);
        publish_head(&mut out, b"room", 5);
        out.extend_from_slice(b"hello");
        publish_tail(&mut out);
        assert_eq!(
            out,
            b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nroom\r\n*1\r\n$4\r\nPING\r\n\
              *3\r\n$7\r\nPUBLISH\r\n$4\r\nroom\r\n$5\r\nhello\r\n"
        );
        assert_eq!(replies(&[&out]).unwrap(), vec![Owned::Other; 3]);
    }

    #[test]
    fn incomplete_replies_say_what_they_need() {
        assert_eq!(parse(b""), Parsed::Need(0));
        assert_eq!(parse(b"+PON"), Parsed::Need(0));
        assert_eq!(parse(b"$5\r\nhel"), Parsed::Need(11));
        assert_eq!(
            parse(b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\n"),
            Parsed::Need(35)
        );
    }

    #[test]
    fn malformed_replies_are_errors() {
        for bad in [
            &b"?\r\n"[..],
            b"\r\n",
            b"+PONG\n",
            b":12x\r\n",
            b"$abc\r\n",
            b"$3\r\nabcd\r\n",
            b"*9\r\n",
            b"*1\r\n*1\r\n:1\r\n",
            b":99999999999999999999\r\n",
            b"$99999999999999999999\r\n",
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
