//! Cutting a byte stream into a protocol's frames, whatever reads it came
//! in: the part of a frame left at the end of one read is kept (in a buffer
//! bounded by the caller) and finished from the next, and every whole frame
//! inside a read is handed over in place, not copied.
//!
//! The protocol's parser looks at the start of a buffer and says how much
//! one frame took ([`Step::Took`]) or how much it needs ([`Step::Need`]), so
//! the kept part grows only by what finishes its frame: it never holds the
//! start of the next one, and once it has reached the largest frame it does
//! not grow again (no allocation per frame).

use std::io;

/// What a protocol's parser made of the start of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// One whole frame of this many bytes, handled.
    Took(usize),
    /// Not a whole frame yet: it is at least this many bytes long in all,
    /// or, when that is no more than the buffer holds, it goes on at least
    /// to the next `\n`.
    Need(usize),
}

/// What a protocol's parser makes of the start of a buffer: a frame `T`
/// and the bytes it took, a need for more, or a malformed stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed<T> {
    /// One whole frame, and the bytes it took.
    Done(T, usize),
    /// Not a whole frame yet: see [`Step::Need`].
    Need(usize),
    /// Not the protocol.
    Bad(&'static str),
}

/// Every frame of `pieces` (one read each) as `parse` reads it (into an
/// owned value); an error names what failed or what was left over. For the
/// protocols' tests: one stream must give the same frames however it is
/// split.
#[cfg(test)]
pub fn frames<O>(pieces: &[&[u8]], parse: impl Fn(&[u8]) -> Parsed<O>) -> Result<Vec<O>, String> {
    let mut carry = Vec::new();
    let mut got = Vec::new();
    for p in pieces {
        feed(&mut carry, p, 1024, &mut |b: &[u8]| match parse(b) {
            Parsed::Done(frame, n) => {
                got.push(frame);
                Ok(Step::Took(n))
            }
            Parsed::Need(n) => Ok(Step::Need(n)),
            Parsed::Bad(why) => Err(io::Error::other(why)),
        })
        .map_err(|e| e.to_string())?;
    }
    if !carry.is_empty() {
        return Err(format!("left over: {carry:?}"));
    }
    Ok(got)
}

/// Checks that `stream` gives `want` whole, split at every offset, and a
/// byte at a time.
#[cfg(test)]
pub fn assert_every_split<O: std::fmt::Debug + PartialEq>(
    stream: &[u8],
    want: &[O],
    frames: impl Fn(&[&[u8]]) -> Result<Vec<O>, String>,
) {
    assert_eq!(frames(&[stream]).unwrap(), want, "whole");
    for i in 0..=stream.len() {
        let got = frames(&[&stream[..i], &stream[i..]]);
        assert_eq!(got.unwrap(), want, "split at {i}");
    }
    let bytes: Vec<&[u8]> = stream.chunks(1).collect();
    assert_eq!(frames(&bytes).unwrap(), want, "a byte at a time");
}

#[cfg(test)]
impl<T> Parsed<T> {
    /// The same answer, the frame made into `f(frame)`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parsed<U> {
        match self {
            Parsed::Done(t, n) => Parsed::Done(f(t), n),
            Parsed::Need(n) => Parsed::Need(n),
            Parsed::Bad(why) => Parsed::Bad(why),
        }
    }
}

/// The parser's answer, with a frame of no bytes (which would never end)
/// turned into an error.
fn step(frame: &mut impl FnMut(&[u8]) -> io::Result<Step>, buf: &[u8]) -> io::Result<Step> {
    match frame(buf)? {
        Step::Took(0) => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a frame of no bytes",
        )),
        other => Ok(other),
    }
}

fn too_long(max: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a frame longer than {max} bytes"),
    )
}

/// Hands every whole frame of `carry` (the unfinished frame of the reads
/// before) followed by `data` to `frame`, and keeps the unfinished end in
/// `carry`. Fails once a frame would need more than `max` bytes, or when
/// `frame` fails.
pub fn feed(
    carry: &mut Vec<u8>,
    mut data: &[u8],
    max: usize,
    frame: &mut impl FnMut(&[u8]) -> io::Result<Step>,
) -> io::Result<()> {
    // Finish the frame begun in an earlier read, taking only its bytes.
    while !carry.is_empty() {
        match step(frame, carry)? {
            Step::Took(n) if n >= carry.len() => carry.clear(), // keeps its capacity
            Step::Took(n) => {
                carry.drain(..n);
            }
            Step::Need(need) if need > max => return Err(too_long(max)),
            Step::Need(_) if data.is_empty() => return Ok(()),
            Step::Need(need) => {
                let take = if need > carry.len() {
                    (need - carry.len()).min(data.len())
                } else {
                    data.iter()
                        .position(|&b| b == b'\n')
                        .map_or(data.len(), |i| i + 1)
                };
                if carry.len() + take > max {
                    return Err(too_long(max));
                }
                carry.extend_from_slice(&data[..take]);
                data = &data[take..];
            }
        }
    }
    // Then every whole frame straight from the read.
    while !data.is_empty() {
        match step(frame, data)? {
            Step::Took(n) => data = &data[n.min(data.len())..],
            Step::Need(need) => {
                if need > max || data.len() > max {
                    return Err(too_long(max));
                }
                carry.extend_from_slice(data);
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy framing: a decimal length, `:`, that many bytes.
    fn toy(buf: &[u8], got: &mut Vec<Vec<u8>>) -> io::Result<Step> {
        let Some(colon) = buf.iter().position(|&b| b == b':') else {
            return Ok(Step::Need(0));
        };
        let len: usize = std::str::from_utf8(&buf[..colon])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "length"))?;
        let end = colon + 1 + len;
        if buf.len() < end {
            return Ok(Step::Need(end));
        }
        got.push(buf[colon + 1..end].to_vec());
        Ok(Step::Took(end))
    }

    fn run(pieces: &[&[u8]], max: usize) -> io::Result<Vec<Vec<u8>>> {
        let mut carry = Vec::new();
        let mut got = Vec::new();
        for p in pieces {
            feed(&mut carry, p, max, &mut |b: &[u8]| toy(b, &mut got))?;
            assert!(carry.len() <= max);
        }
        Ok(got)
    }

    #[test]
    fn every_split_gives_the_same_frames() {
        let stream = b"3:abc0:11:hello world2:\n\n";
        let want = run(&[stream], 64).unwrap();
        assert_eq!(want.len(), 4);
        for i in 0..=stream.len() {
            for j in i..=stream.len() {
                let got = run(&[&stream[..i], &stream[i..j], &stream[j..]], 64).unwrap();
                assert_eq!(got, want, "split at {i} and {j}");
            }
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&bytes, 64).unwrap(), want, "a byte at a time");
    }

    #[test]
    fn the_kept_part_is_only_the_unfinished_frame() {
        let mut carry = Vec::new();
        let mut got = Vec::new();
        feed(&mut carry, b"5:ab", 64, &mut |b: &[u8]| toy(b, &mut got)).unwrap();
        assert_eq!(carry, b"5:ab");
        feed(&mut carry, b"cde1:x2", 64, &mut |b: &[u8]| toy(b, &mut got)).unwrap();
        assert_eq!(carry, b"2", "the next frame's start is kept, no more");
        assert_eq!(got, [b"abcde".to_vec(), b"x".to_vec()]);
    }

    #[test]
    fn frames_over_the_bound_fail() {
        assert!(run(&[b"100:abc"], 64).is_err(), "a length over the bound");
        assert!(run(&[b"3", b"00:a"], 64).is_err(), "the same, split");
        let endless = [b'1'; 100];
        assert!(run(&[&endless], 64).is_err(), "no end in sight");
        assert!(run(&[&endless[..40], &endless[40..]], 64).is_err());
        assert!(run(&[b"x:"], 64).is_err(), "the parser's own error");
    }
}
