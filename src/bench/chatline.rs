//! The lines of the chat benchmark: what a sender writes, and what a
//! receiver makes of what the server relays. Pure, no I/O, no allocation.
//!
//! A sender writes `<sender> <seq> <ts> <padding>\n`, padded with `.` to
//! exactly `--size` bytes: its index among the senders, the line's sequence
//! number (0, 1, 2, ... per sender), and when it was made, in nanoseconds
//! since the benchmark started. A chat server relays it to everyone else in
//! the room as `MSG <nick> <sender> <seq> <ts> <padding>\n`; the sender's
//! index travels in the text so a receiver needs no nick table. Over Redis
//! or NATS (`--proto`) the same line is the message payload, `\n` and all,
//! and a receiver reads it with [`parse_text`].

/// The smallest `--size` that holds every field at its widest: a 5-digit
/// sender, two 20-digit numbers, three spaces and the `\n`.
pub const MIN_SIZE: usize = 49;

/// What one relayed line is to a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relayed {
    /// A benchmark line: who sent it, its number, when it was made (ns).
    Msg { sender: usize, seq: u64, ts_ns: u64 },
    /// A `MSG` line whose text is not a benchmark line.
    Bad,
    /// Anything else (`JOIN`, `QUIT`, ...): not for the receiver to count.
    Other,
}

/// Appends `v` in decimal.
pub fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends one sender line of exactly `size` bytes (more only if the fields
/// do not fit, which `size >= MIN_SIZE` rules out).
pub fn encode(out: &mut Vec<u8>, sender: usize, seq: u64, ts_ns: u64, size: usize) {
    let start = out.len();
    push_decimal(out, sender as u64);
    out.push(b' ');
    push_decimal(out, seq);
    out.push(b' ');
    push_decimal(out, ts_ns);
    out.push(b' ');
    let used = out.len() - start + 1;
    out.resize(out.len() + size.saturating_sub(used), b'.');
    out.push(b'\n');
}

/// The next space-separated field of `rest`, and what follows its space.
fn field(rest: &[u8]) -> (&[u8], &[u8]) {
    match rest.iter().position(|&b| b == b' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[]),
    }
}

/// A decimal number of 1 to 20 digits that fits a `u64`.
fn decimal(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 20 {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Reads one line as the server sent it (without its `\n`).
pub fn parse(line: &[u8]) -> Relayed {
    let Some(rest) = line.strip_prefix(b"MSG ") else {
        return Relayed::Other;
    };
    let (_nick, rest) = field(rest);
    parse_text(rest)
}

/// Reads a sender's line as it arrived, without a chat server's `MSG
/// <nick> ` before it: a Redis or NATS message payload.
pub fn parse_text(text: &[u8]) -> Relayed {
    let (sender, rest) = field(text);
    let (seq, rest) = field(rest);
    let (ts, _padding) = field(rest);
    match (decimal(sender), decimal(seq), decimal(ts)) {
        (Some(sender), Some(seq), Some(ts_ns)) => Relayed::Msg {
            sender: usize::try_from(sender).unwrap_or(usize::MAX),
            seq,
            ts_ns,
        },
        _ => Relayed::Bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_exactly_size_bytes() {
        let mut out = Vec::new();
        encode(&mut out, 3, 17, 123_456_789, 64);
        assert_eq!(out.len(), 64);
        assert!(out.starts_with(b"3 17 123456789 ...."), "{out:?}");
        assert_eq!(out.last(), Some(&b'\n'));
        encode(&mut out, 0, 0, 0, 64);
        assert_eq!(out.len(), 128, "appends");
    }

    #[test]
    fn the_widest_fields_fit_min_size() {
        let mut out = Vec::new();
        encode(&mut out, 99_999, u64::MAX, u64::MAX, MIN_SIZE);
        assert!(out.len() <= MIN_SIZE, "{}", out.len());
    }

    #[test]
    fn relayed_lines_parse_back() {
        let mut out = b"MSG guest7 ".to_vec();
        encode(&mut out, 2, 40, 9_000, 64);
        out.pop();
        assert_eq!(
            parse(&out),
            Relayed::Msg {
                sender: 2,
                seq: 40,
                ts_ns: 9_000
            }
        );
        assert_eq!(
            parse(b"MSG a 1 2 3"),
            Relayed::Msg {
                sender: 1,
                seq: 2,
                ts_ns: 3
            }
        );
    }

    #[test]
    fn payloads_parse_back_with_their_newline() {
        let mut out = Vec::new();
        encode(&mut out, 4, 7, 11, MIN_SIZE);
        let msg = Relayed::Msg {
            sender: 4,
            seq: 7,
            ts_ns: 11,
        };
        assert_eq!(parse_text(&out), msg);
        assert_eq!(parse_text(b"hello"), Relayed::Bad);
        assert_eq!(parse_text(b""), Relayed::Bad);
    }

    #[test]
    fn other_lines_are_not_counted() {
        assert_eq!(parse(b"JOIN guest4"), Relayed::Other);
        assert_eq!(parse(b"HELLO guest1 lobby"), Relayed::Other);
        assert_eq!(parse(b"MSGX 1 2 3"), Relayed::Other);
    }

    #[test]
    fn foreign_msg_text_is_bad() {
        for line in [
            &b"MSG guest1 hello there"[..],
            b"MSG guest1 1 2",
            b"MSG guest1 1 x 3",
            b"MSG guest1 1 2 99999999999999999999999",
            b"MSG ",
        ] {
            assert_eq!(parse(line), Relayed::Bad, "{line:?}");
        }
    }
}
