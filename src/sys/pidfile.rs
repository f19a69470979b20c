//! A pidfile guarded by `flock(2)`: the lock, not the file, says whether
//! the server runs. A file left behind by a daemon killed with `-9` holds
//! no lock (the kernel drops it with the last descriptor), so it is taken
//! over; a file whose lock is held names a running process.
//!
//! [`acquire`], in order:
//!
//! 1. `open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644)`
//! 2. `flock(LOCK_EX | LOCK_NB)`; `EWOULDBLOCK` means another process holds
//!    it: read its pid and give up
//! 3. `fstat` the descriptor and `stat` the path: if they differ, the owner
//!    removed the file between steps 1 and 2 (it was exiting), so start over
//! 4. `ftruncate(0)` → `write("<pid>\n")`
//!
//! The descriptor, and with it the lock, is kept until [`Pidfile`] drops:
//! `unlink(path)` first, then `close`, so nobody can lock a file that is
//! about to vanish.

use std::fs::File;
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// How many times [`acquire`] starts over when the file vanishes under it.
const ATTEMPTS: usize = 5;

/// A locked pidfile holding this process's pid; removed on drop.
pub struct Pidfile {
    lock: Option<Flock<File>>,
    path: PathBuf,
}

/// What [`acquire`] found.
pub enum Lock {
    /// The lock is ours and the pid is written.
    Acquired(Pidfile),
    /// Another process holds the lock; the pid it wrote, if readable.
    HeldBy(Option<i32>),
}

/// Takes the pidfile at `path` for this process (steps in the module docs).
pub fn acquire(path: &Path) -> io::Result<Lock> {
    for _ in 0..ATTEMPTS {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, Errno::EWOULDBLOCK)) => return Ok(Lock::HeldBy(read_pid(&mut file))),
            Err((_, e)) => return Err(e.into()),
        };
        if !same_file(&lock, path)? {
            unlock(lock);
            continue;
        }
        lock.set_len(0)?;
        lock.rewind()?;
        lock.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        return Ok(Lock::Acquired(Pidfile {
            lock: Some(lock),
            path: path.to_path_buf(),
        }));
    }
    Err(io::Error::other("removed under us again and again"))
}

/// Who holds the pidfile's lock: `Ok(None)` when nobody does (or there is
/// no file). Opens read-only and tries `flock(LOCK_SH | LOCK_NB)`.
pub fn holder(path: &Path) -> io::Result<Option<i32>> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(free) => {
            unlock(free);
            Ok(None)
        }
        Err((mut file, Errno::EWOULDBLOCK)) => read_pid(&mut file)
            .map(Some)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "locked, but no pid in it")),
        Err((_, e)) => Err(e.into()),
    }
}

/// The pid written in the file, if there is one.
fn read_pid(file: &mut File) -> Option<i32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok().filter(|&pid| pid > 0)
}

/// True when the open `file` is still the one `path` names.
fn same_file(file: &File, path: &Path) -> io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::metadata(path) {
        Ok(named) => Ok(open.dev() == named.dev() && open.ino() == named.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

impl Pidfile {
    /// Where the pidfile is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Pidfile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(lock) = self.lock.take() {
            unlock(lock);
        }
    }
}

/// `flock(LOCK_UN)` → `close`. (nix's own drop would panic if unlocking
/// failed; here the descriptor is left to the process exit instead.)
fn unlock(lock: Flock<File>) {
    if let Err((lock, _)) = lock.unlock() {
        std::mem::forget(lock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("edgechat-pidfile-{name}-{}", std::process::id()))
    }

    #[test]
    fn held_while_owned_removed_on_drop() {
        let path = temp_path("held");
        let Ok(Lock::Acquired(owned)) = acquire(&path) else {
            panic!("first acquire must succeed");
        };
        let me = std::process::id() as i32;
        assert_eq!(std::fs::read_to_string(&path).ok(), Some(format!("{me}\n")));
        // flock locks belong to open file descriptions: a second open in
        // the same process conflicts like another process would.
        assert!(matches!(acquire(&path), Ok(Lock::HeldBy(Some(p))) if p == me));
        assert_eq!(holder(&path).ok(), Some(Some(me)));
        drop(owned);
        assert!(!path.exists());
        assert_eq!(holder(&path).ok(), Some(None));
    }

    #[test]
    fn stale_file_is_taken_over_and_truncated() {
        let path = temp_path("stale");
        std::fs::write(&path, "4000000000000\nleftover bytes\n").expect("write");
        assert_eq!(holder(&path).ok(), Some(None), "nobody holds the lock");
        let Ok(Lock::Acquired(owned)) = acquire(&path) else {
            panic!("a stale pidfile must be taken over");
        };
        let me = std::process::id();
        assert_eq!(
            std::fs::read_to_string(owned.path()).ok(),
            Some(format!("{me}\n"))
        );
    }
}
