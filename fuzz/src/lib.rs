//! The fuzz harnesses, one module per target, kept out of the
//! `fuzz_targets/` files so that the seed generator (`examples/seeds.rs`)
//! and the seed replay tests (`cargo test --lib`) use the same input
//! formats as the fuzzers.
//!
//! Every harness takes the fuzzer's bytes, drives the real library code
//! with them, and panics (a crash, for libFuzzer) when an invariant breaks:
//!
//! - [`framer`]: `LineFramer` against a byte-at-a-time reference model.
//! - [`chat`]: sessions and the router, several clients, checked after
//!   every step.
//! - [`tls`]: the server's TLS transport over a socket pair, fed raw bytes
//!   or a real rustls client's stream with bytes corrupted on the way.

pub mod chat;
pub mod framer;
pub mod tls;

/// A small deterministic generator (xorshift64*), so that one input always
/// means the same splits and choices.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value, zero included).
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The next 64 random bits.
    pub fn bits(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.bits() % n as u64) as usize
    }
}

/// Reads the fuzzer's bytes front to back; past the end every read is 0.
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    /// One byte, or 0 at the end.
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// Up to `n` bytes.
    pub fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    /// True once everything is read.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    /// Every committed seed runs through its harness without a failure
    /// (`cargo test --lib`, no fuzzer needed).
    /// A target's name and its harness.
    type Target = (&'static str, fn(&[u8]));

    #[test]
    fn seeds_pass() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
        let targets: [Target; 3] = [
            ("framer", crate::framer::run),
            ("chat", crate::chat::run),
            ("tls", crate::tls::run),
        ];
        for (target, run) in targets {
            for entry in std::fs::read_dir(seeds.join(target)).expect("seeds") {
                let path = entry.expect("entry").path();
                eprintln!("{}", path.display());
                run(&std::fs::read(&path).expect("seed"));
            }
        }
    }
}
