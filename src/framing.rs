//! `LineFramer`: bytes in, lines out. Pure: no I/O, no clock.
//!
//! A line ends at `\n`; a `\r` right before it is stripped. A line longer
//! than the limit (counted without the `\n` and that `\r`) is reported once
//! as [`Frame::TooLong`] and its bytes are discarded up to the next `\n`.
//! Complete lines inside one read are handed out as slices of that read
//! (no copy); only an unfinished tail is kept, and its memory is given back
//! as soon as the line completes, so an idle client holds no buffer.

/// One thing the framer found in the byte stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A complete line, without its `\n` or `\r\n`.
    Line(&'a [u8]),
    /// A line passed the limit; the rest of it will be discarded.
    TooLong,
}

/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug)]
pub struct LineFramer {
    partial: Vec<u8>,
    max: usize,
    discarding: bool,
}

impl LineFramer {
    /// A framer for lines of at most `max` bytes.
    pub fn new(max: usize) -> LineFramer {
        LineFramer {
            partial: Vec::new(),
            max,
            discarding: false,
        }
    }

    /// True while an unfinished line is held (or being discarded).
    pub fn has_partial(&self) -> bool {
        !self.partial.is_empty() || self.discarding
    }

    /// Bytes of the unfinished line held in memory: at most `max + 1` (the
    /// limit, plus a `\r` whose `\n` may come next); none while a too-long
    /// line is being discarded.
    pub fn held(&self) -> usize {
        self.partial.len()
    }

    /// Drops the unfinished line, if any (for `--line-timeout`).
    pub fn drop_partial(&mut self) {
        self.partial = Vec::new();
        self.discarding = false;
    }

    /// Feeds `data`, calling `on` for every line (or overflow) it completes.
    /// Returns how many newlines `data` held (every line it ended, empty,
    /// too long or discarded ones included), so the caller need not look
    /// for them again.
    pub fn push(&mut self, mut data: &[u8], mut on: impl FnMut(Frame<'_>)) -> usize {
        let mut ended = 0;
        while !data.is_empty() {
            let nl = data.iter().position(|&b| b == b'\n');
            let (head, rest) = match nl {
                Some(i) => (&data[..i], Some(&data[i + 1..])),
                None => (data, None),
            };
            if self.discarding {
                if rest.is_some() {
                    self.discarding = false;
                }
            } else if rest.is_some() && self.partial.is_empty() {
                self.emit(head, &mut on);
            } else if self.partial.len() + head.len() > self.max + 1 {
                // Too long even if the next byte turns out to be the `\n`
                // after a `\r`: say so now, not when the line ends.
                self.partial = Vec::new();
                self.discarding = rest.is_none();
                on(Frame::TooLong);
            } else {
                self.partial.extend_from_slice(head);
                if rest.is_some() {
                    let line = std::mem::take(&mut self.partial);
                    self.emit(&line, &mut on);
                }
            }
            ended += usize::from(rest.is_some());
            data = rest.unwrap_or(&[]);
        }
        ended
    }

    fn emit(&self, line: &[u8], on: &mut impl FnMut(Frame<'_>)) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > self.max {
            on(Frame::TooLong);
        } else {
            on(Frame::Line(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    enum F {
        L(Vec<u8>),
        Long,
    }

    #[test]
    fn push_counts_every_newline_it_consumed() {
        let mut f = LineFramer::new(4);
        assert_eq!(
            f.push(b"a\n\nbb\r\nc", |_| {}),
            3,
            "empty and CRLF lines count"
        );
        assert_eq!(f.push(b"c", |_| {}), 0, "a partial line ends nothing");
        assert_eq!(f.push(b"toolong", |_| {}), 0);
        assert_eq!(f.push(b"still\nx\n", |_| {}), 2, "a discarded line counts");
    }

    fn run(f: &mut LineFramer, chunks: &[&[u8]]) -> Vec<F> {
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, |fr| {
                out.push(match fr {
                    Frame::Line(l) => F::L(l.to_vec()),
                    Frame::TooLong => F::Long,
                })
            });
        }
        out
    }

    fn l(s: &str) -> F {
        F::L(s.as_bytes().to_vec())
    }

    #[test]
    fn whole_lines_lf_and_crlf() {
        let mut f = LineFramer::new(16);
        let got = run(&mut f, &[b"a\nbc\r\n\n\r\nd"]);
        assert_eq!(got, vec![l("a"), l("bc"), l(""), l("")]);
        assert!(f.has_partial());
        assert_eq!(run(&mut f, &[b"e\n"]), vec![l("de")]);
        assert!(!f.has_partial());
    }

    #[test]
    fn split_crlf_across_reads() {
        let mut f = LineFramer::new(16);
        assert_eq!(run(&mut f, &[b"hi\r", b"\n"]), vec![l("hi")]);
    }

    #[test]
    fn limit_counts_without_crlf() {
        let mut f = LineFramer::new(4);
        let got = run(&mut f, &[b"abcd\r\nabcd\nabcde\nok\n"]);
        assert_eq!(got, vec![l("abcd"), l("abcd"), F::Long, l("ok")]);
        // Same, with the line split so the tail path is taken.
        let got = run(&mut f, &[b"ab", b"cd\r", b"\n"]);
        assert_eq!(got, vec![l("abcd")]);
    }

    #[test]
    fn too_long_reported_once_then_discarded_to_newline() {
        let mut f = LineFramer::new(4);
        let got = run(&mut f, &[b"abc", b"defgh", b"ijkl", b"mn\nok\n"]);
        assert_eq!(got, vec![F::Long, l("ok")]);
        assert!(!f.has_partial());
    }

    #[test]
    fn drop_partial_forgets_the_tail() {
        let mut f = LineFramer::new(8);
        run(&mut f, &[b"half"]);
        f.drop_partial();
        assert_eq!(run(&mut f, &[b"new\n"]), vec![l("new")]);
    }

    #[test]
    fn any_split_gives_the_same_frames() {
        let stream: &[u8] = b"one\r\ntwo\n\nthis line is too long\nx\r\nlast\n";
        let mut whole = LineFramer::new(8);
        let want = run(&mut whole, &[stream]);
        for a in 0..=stream.len() {
            for b in a..=stream.len() {
                let mut f = LineFramer::new(8);
                let got = run(&mut f, &[&stream[..a], &stream[a..b], &stream[b..]]);
                assert_eq!(got, want, "split at {a},{b}");
            }
        }
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn frames(chunks: &[&[u8]], max: usize) -> Vec<Option<Vec<u8>>> {
        let mut f = LineFramer::new(max);
        let mut out = Vec::new();
        for c in chunks {
            f.push(c, |fr| {
                out.push(match fr {
                    Frame::Line(l) => Some(l.to_vec()),
                    Frame::TooLong => None,
                })
            });
        }
        out
    }

    proptest! {
        #[test]
        fn any_split_of_a_stream_gives_the_same_lines(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), any::<u8>()], 0..400),
            cuts in proptest::collection::vec(0usize..400, 0..20),
            max in 1usize..40,
        ) {
            let whole = frames(&[&data], max);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts {
                chunks.push(&data[at..c]);
                at = c;
            }
            chunks.push(&data[at..]);
            prop_assert_eq!(frames(&chunks, max), whole);
        }
    }
}
