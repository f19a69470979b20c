//! A small `log` backend: one line per record on stderr, or appended to
//! the `--log` file, `2026-11-22T08:05:56.123Z INFO message`, UTC, no
//! dependencies. [`reopen`] (on SIGHUP) opens the file by its path again,
//! so after logrotate renames it a new file appears.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

struct Logger {
    /// The `--log` file and its path; `None` means stderr.
    file: Mutex<Option<(PathBuf, File)>>,
}

static LOGGER: Logger = Logger {
    file: Mutex::new(None),
};

/// Installs the logger at `level`. Calling it twice keeps the first logger.
pub fn init(level: LevelFilter) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

/// From now on, appends to `path` instead of writing to stderr:
/// `open(O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)`.
pub fn to_file(path: &Path) -> io::Result<()> {
    let file = open_append(path)?;
    if let Ok(mut slot) = LOGGER.file.lock() {
        *slot = Some((path.to_path_buf(), file));
    }
    Ok(())
}

/// Opens the log file by its path again (logrotate renamed the old one).
/// On failure the old file stays in use. Returns `false` when logging to
/// stderr (nothing to reopen).
pub fn reopen() -> io::Result<bool> {
    let Ok(mut slot) = LOGGER.file.lock() else {
        return Ok(false);
    };
    let Some((path, file)) = slot.as_mut() else {
        return Ok(false);
    };
    *file = open_append(path)?;
    Ok(true)
}

fn open_append(path: &Path) -> io::Result<File> {
    File::options()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// The level a record is logged at. Records of other crates (rustls) are
/// demoted to `DEBUG` at most: what they report is caused by one peer
/// (an alert, a refused renegotiation), and a peer must not be able to
/// fill the log at the default level.
fn level_of(metadata: &Metadata<'_>) -> Level {
    match ours(metadata.target()) {
        true => metadata.level(),
        false => metadata.level().max(Level::Debug),
    }
}

fn ours(target: &str) -> bool {
    target.starts_with(env!("CARGO_CRATE_NAME"))
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_of(metadata) <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let level = match level_of(record.metadata()) {
            Level::Error => "ERROR",
            Level::Warn => "WARN",
            Level::Info => "INFO",
            Level::Debug => "DEBUG",
            Level::Trace => "TRACE",
        };
        let from = match ours(record.target()) {
            true => String::new(),
            false => format!("{}: ", record.target()),
        };
        let line = format!(
            "{} {level} {from}{}\n",
            timestamp(SystemTime::now()),
            record.args()
        );
        // One write per line, so lines from a crash and a log never interleave.
        match self.file.lock().as_deref_mut() {
            Ok(Some((_, file))) => drop(file.write_all(line.as_bytes())),
            _ => drop(io::stderr().lock().write_all(line.as_bytes())),
        }
    }

    fn flush(&self) {}
}

/// At most one log line per interval for an event a peer can repeat at
/// will (a connection dropped at the descriptor limit, a datagram cut
/// short): the line that is written says how many were not.
#[derive(Debug)]
pub struct Throttle {
    every: Duration,
    last: Option<Instant>,
    quiet: u64,
}

impl Throttle {
    /// One line per `every` at most.
    pub const fn new(every: Duration) -> Throttle {
        Throttle {
            every,
            last: None,
            quiet: 0,
        }
    }

    /// Whether a line may be written at `now`: `Some(n)` with the number of
    /// events since the last line that were not logged, or `None` (this
    /// one is counted instead).
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.every => {
                self.quiet += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.quiet))
            }
        }
    }
}

/// RFC 3339 UTC timestamp with milliseconds.
fn timestamp(now: SystemTime) -> String {
    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_writes_one_line_per_interval_and_counts_the_rest() {
        let mut t = Throttle::new(Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(t.allow(start), Some(0));
        for ms in [1, 500, 999] {
            assert_eq!(t.allow(start + Duration::from_millis(ms)), None);
        }
        assert_eq!(t.allow(start + Duration::from_millis(1000)), Some(3));
        assert_eq!(t.allow(start + Duration::from_millis(1001)), None);
        assert_eq!(t.allow(start + Duration::from_secs(5)), Some(1));
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_334_756_123);
        assert_eq!(timestamp(t), "2026-11-22T08:05:56.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(timestamp(leap), "2000-02-29T00:00:00.000Z");
    }
}
