//! The server's side of a soak's end: a fresh client must still get
//! `PONG`, and the server's descriptors must come back to what they were.

use std::time::{Duration, Instant};

use crate::bench::link::Dialer;
use crate::bench::pool::Pool;
use crate::bench::proc::{self, Pid};

/// After every client is closed, how long the server may take to close
/// its side of them all.
const SETTLE_LIMIT: Duration = Duration::from_secs(30);
/// How long the fresh client may wait for `HELLO` and `PONG`.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// A fresh client connects, has its `HELLO`, and gets `PONG` for `/ping`.
pub fn probe(dialer: &Dialer) -> std::result::Result<(), String> {
    let what = if dialer.tls.is_some() { "tls://" } else { "" };
    let fail = |why: String| format!("{what}{}: {why}", dialer.addr);
    let mut pool = Pool::connect(dialer, 1).map_err(|e| fail(e.to_string()))?;
    pool.await_hellos().map_err(|e| fail(e.to_string()))?;
    if pool.hellos() != 1 {
        return Err(fail("closed before HELLO".into()));
    }
    let ping = b"/ping soak-alive\n";
    let mut sent = 0;
    let mut pong = false;
    let deadline = Instant::now() + PROBE_LIMIT;
    while !pong {
        if let Some(Some(c)) = pool.conns.get_mut(0) {
            sent += c
                .link
                .send(&ping[sent..])
                .map_err(|e| fail(format!("send: {e}")))?;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(fail(format!("no PONG within {PROBE_LIMIT:?}")));
        }
        pool.wait(left.min(Duration::from_millis(50)))
            .map_err(|e| fail(e.to_string()))?;
        if !pool.read(0, |line| pong |= line == b"PONG soak-alive") {
            return Err(fail("closed before PONG".into()));
        }
    }
    Ok(())
}

/// Waits (at most [`SETTLE_LIMIT`]) until the server holds no more than
/// `baseline` descriptors; returns the last count (`None` if unreadable)
/// and how long it waited.
pub fn settle_fds(pid: Pid, baseline: u64) -> (Option<u64>, Duration) {
    let start = Instant::now();
    loop {
        let Ok(n) = proc::fd_count(pid) else {
            return (None, start.elapsed());
        };
        if n <= baseline || start.elapsed() >= SETTLE_LIMIT {
            return (Some(n), start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
