//! A progress line while a run goes: once a second, on stderr, and only
//! when stderr is a terminal (scripts and `--json` readers see nothing).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Rewrites one status line in place: seconds so far, the count, its rate.
pub struct Progress {
    what: &'static str,
    start: Instant,
    next: Instant,
    /// The count at the previous line, for the rate over the last second.
    last: u64,
    on: bool,
    shown: bool,
}

impl Progress {
    /// A progress line counting `what` (e.g. "msgs", "deliveries").
    pub fn new(what: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            what,
            start: now,
            next: now + Duration::from_secs(1),
            last: 0,
            on: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// Shows `count` if a second has passed since the last line.
    #[inline]
    pub fn tick(&mut self, now: Instant, count: u64) {
        if !self.on || now < self.next {
            return;
        }
        let secs = now.duration_since(self.start).as_secs_f64();
        let rate = count.saturating_sub(self.last);
        let line = format!("\r  {secs:5.1} s  {count:>12} {}  {rate:>10}/s ", self.what);
        let _ = std::io::stderr().write_all(line.as_bytes());
        (self.last, self.next, self.shown) = (count, now + Duration::from_secs(1), true);
    }
}

impl Drop for Progress {
    /// Ends the line, so the summary starts on a fresh one.
    fn drop(&mut self) {
        if self.shown {
            let _ = std::io::stderr().write_all(b"\n");
        }
    }
}
