//! The `framer` target: [`LineFramer`] fed a byte stream cut at points
//! derived from the input, against a reference model that applies the
//! protocol's framing rules one byte at a time.
//!
//! Input: `[max - 1] [seed lo] [seed hi] stream...`. The stream is framed
//! whole, one byte at a time, and in chunks whose sizes (and the
//! `drop_partial` calls between them, as `--line-timeout` makes) come from
//! the seed. After every push the framer must have reported exactly what
//! the model reported for the same bytes, hold no more than `max + 1`
//! bytes, and agree on whether a line is unfinished.

use edgechat::framing::{Frame, LineFramer};

use crate::{Bytes, Rng};

/// What the framer reports, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Line(Vec<u8>),
    TooLong,
}

/// The rules, one byte at a time: a line ends at `\n`, loses one `\r`
/// before it, and is reported too long once, as soon as it holds more
/// than `max + 1` bytes (the limit and a `\r`) or when it ends over the
/// limit; its bytes are then skipped up to the next `\n`.
struct Model {
    max: usize,
    line: Vec<u8>,
    reported: bool,
    out: Vec<Out>,
}

impl Model {
    fn new(max: usize) -> Model {
        Model {
            max,
            line: Vec::new(),
            reported: false,
            out: Vec::new(),
        }
    }

    fn byte(&mut self, b: u8) {
        if b == b'\n' {
            if !self.reported {
                let line = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
                self.out.push(if line.len() > self.max {
                    Out::TooLong
                } else {
                    Out::Line(line.to_vec())
                });
            }
            self.line.clear();
            self.reported = false;
        } else if !self.reported {
            self.line.push(b);
            if self.line.len() > self.max + 1 {
                self.out.push(Out::TooLong);
                self.line.clear();
                self.reported = true;
            }
        }
    }

    fn drop_partial(&mut self) {
        self.line.clear();
        self.reported = false;
    }

    fn has_partial(&self) -> bool {
        !self.line.is_empty() || self.reported
    }
}

/// A framer and the model side by side.
struct Pair {
    framer: LineFramer,
    model: Model,
    got: Vec<Out>,
    checked: usize,
}

impl Pair {
    fn new(max: usize) -> Pair {
        Pair {
            framer: LineFramer::new(max),
            model: Model::new(max),
            got: Vec::new(),
            checked: 0,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        let (got, max) = (&mut self.got, self.model.max);
        let ended = self.framer.push(chunk, |f| {
            got.push(match f {
                Frame::Line(l) => {
                    assert!(
                        l.len() <= max,
                        "a line of {} bytes passed max {max}",
                        l.len()
                    );
                    assert!(!l.contains(&b'\n'), "a line holds its terminator");
                    Out::Line(l.to_vec())
                }
                Frame::TooLong => Out::TooLong,
            })
        });
        let newlines = chunk.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(ended, newlines, "push counts every newline it consumed");
        for &b in chunk {
            self.model.byte(b);
        }
        self.check();
    }

    fn drop_partial(&mut self) {
        self.framer.drop_partial();
        self.model.drop_partial();
        self.check();
    }

    fn check(&mut self) {
        // Frames before `checked` were compared already (no quadratic work
        // when the stream goes in one byte at a time).
        assert_eq!(
            self.got.len(),
            self.model.out.len(),
            "framer and model disagree"
        );
        assert_eq!(
            self.got[self.checked..],
            self.model.out[self.checked..],
            "framer and model disagree"
        );
        self.checked = self.got.len();
        assert_eq!(self.framer.has_partial(), self.model.has_partial());
        assert!(
            self.framer.held() <= self.model.max + 1,
            "holds {} bytes for max {}",
            self.framer.held(),
            self.model.max
        );
    }
}

/// Runs one input (see the module doc).
pub fn run(data: &[u8]) {
    let mut input = Bytes(data);
    let max = input.u8() as usize + 1;
    let seed = u64::from(input.u8()) | u64::from(input.u8()) << 8;
    let stream = input.0;

    // Whole, then one byte at a time: the same frames.
    let mut whole = Pair::new(max);
    whole.push(stream);
    let mut bytes = Pair::new(max);
    for b in stream.chunks(1) {
        bytes.push(b);
    }
    assert_eq!(whole.got, bytes.got);

    // Chunks cut by the seed, short or long, with `drop_partial` between
    // some of them when the seed's low bit says so.
    let mut rng = Rng::new(seed);
    let drops = seed & 1 == 1;
    let mut cut = Pair::new(max);
    let mut rest = stream;
    while !rest.is_empty() {
        let n = match rng.below(4) {
            0 => rng.below(4),
            1 => rng.below(max + 3),
            _ => rng.below(64),
        };
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        cut.push(chunk);
        rest = tail;
        if drops && rng.below(8) == 0 {
            cut.drop_partial();
        }
    }
    if !drops {
        assert_eq!(cut.got, whole.got, "a split changed the frames");
    }
}
