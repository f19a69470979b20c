//! `getrlimit(2)`/`setrlimit(2)` and the reserve descriptor for `EMFILE`.

use std::fs::File;
use std::io;

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the new
/// soft limit: how many descriptors this process may hold at once.
pub fn raise_nofile() -> io::Result<u64> {
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).map_err(io::Error::from)?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).map_err(io::Error::from)?;
        return Ok(hard);
    }
    Ok(soft)
}

/// A spare descriptor held open so that, when `accept` fails with `EMFILE`,
/// the server can free one slot, accept the pending connection, close it,
/// and take the slot back (the libev / nginx "reserve fd" trick). Without it
/// the pending connection stays in the backlog and edge-triggered epoll never
/// reports it again, or level-triggered epoll reports it forever (a busy loop).
pub struct ReserveFd(Option<File>);

impl ReserveFd {
    /// Opens `/dev/null` as the spare.
    pub fn new() -> io::Result<ReserveFd> {
        Ok(ReserveFd(Some(File::open("/dev/null")?)))
    }

    /// Closes the spare, runs `f` with the freed slot, then reopens the spare.
    ///
    /// `f` must close what it opened before it returns, never return it: a
    /// descriptor still open here holds the freed slot, the spare cannot be
    /// reopened, and the next `EMFILE` finds no slot to free.
    pub fn with_freed_slot<T>(&mut self, f: impl FnOnce() -> T) -> T {
        self.0 = None;
        let out = f();
        self.0 = File::open("/dev/null").ok();
        out
    }
}
