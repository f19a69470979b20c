//! What the chaos clients did and what the server answered: actions by
//! kind, `ERR` lines by code, and how their connections ended.

/// One kind of thing a chaos client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Connect to the plain listener.
    Connect,
    /// Connect to the TLS listener and complete a handshake.
    ConnectTls,
    /// `/nick` to a chaos nick (which may be taken).
    Nick,
    /// `/join` a room (now and then one with a bad name).
    Join,
    /// A line of text to the room.
    Talk,
    /// `/msg` to a chaos client or a checker (who may not exist).
    Dm,
    /// `/who`, `/rooms`, `/stats`, `/help` or `/ping`.
    Query,
    /// Many room lines at once.
    Burst,
    /// Read a little at a time for a few seconds.
    SlowRead,
    /// Stop reading (until cut, or until it gives up and reconnects).
    StopRead,
    /// A line that is not UTF-8.
    BadUtf8,
    /// A line full of control characters and escapes.
    Control,
    /// A line longer than the server's limit.
    LongLine,
    /// An unknown command, or a command with bad arguments.
    BadCommand,
    /// A line trickled a byte at a time for seconds, then left unfinished
    /// (the client closes) or finished.
    Slowloris,
    /// Bytes that are not TLS, sent to the TLS listener.
    TlsGarbage,
    /// A ClientHello cut short (possibly to nothing), then silence.
    TlsTruncated,
    /// `shutdown(SHUT_WR)` (after `close_notify` over TLS), then read to EOF.
    HalfClose,
    /// `SO_LINGER` 0, then `close`: an RST.
    Reset,
    /// `/quit`, then read to EOF.
    Quit,
    /// `close` without a word.
    Close,
}

impl Kind {
    pub const ALL: [Kind; 21] = [
        Kind::Connect,
        Kind::ConnectTls,
        Kind::Nick,
        Kind::Join,
        Kind::Talk,
        Kind::Dm,
        Kind::Query,
        Kind::Burst,
        Kind::SlowRead,
        Kind::StopRead,
        Kind::BadUtf8,
        Kind::Control,
        Kind::LongLine,
        Kind::BadCommand,
        Kind::Slowloris,
        Kind::TlsGarbage,
        Kind::TlsTruncated,
        Kind::HalfClose,
        Kind::Reset,
        Kind::Quit,
        Kind::Close,
    ];

    /// Its name in the report (`snake_case`, as JSON keys want).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Connect => "connect",
            Kind::ConnectTls => "connect_tls",
            Kind::Nick => "nick",
            Kind::Join => "join",
            Kind::Talk => "talk",
            Kind::Dm => "dm",
            Kind::Query => "query",
            Kind::Burst => "burst",
            Kind::SlowRead => "slow_read",
            Kind::StopRead => "stop_read",
            Kind::BadUtf8 => "bad_utf8",
            Kind::Control => "control_chars",
            Kind::LongLine => "long_line",
            Kind::BadCommand => "bad_command",
            Kind::Slowloris => "slowloris",
            Kind::TlsGarbage => "tls_garbage",
            Kind::TlsTruncated => "tls_truncated",
            Kind::HalfClose => "half_close",
            Kind::Reset => "reset",
            Kind::Quit => "quit",
            Kind::Close => "close",
        }
    }
}

/// The `ERR` codes of the protocol, in the order the report lists them;
/// anything else counts as `other`.
pub use crate::chat::ERR_CODES;

/// Everything the chaos clients counted.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Actions started, by [`Kind`] (in the order of [`Kind::ALL`]).
    pub actions: [u64; Kind::ALL.len()],
    /// `ERR` lines received, by code (in the order of [`ERR_CODES`]),
    /// then every other code.
    pub errs: [u64; ERR_CODES.len() + 1],
    /// Connections the server ended while the client still used them (EOF
    /// or reset: cuts, timeouts, TLS alerts).
    pub server_closed: u64,
    /// Of those, ended with a reset.
    pub resets: u64,
    /// Of those, connections of clients that had read slowly or stopped
    /// reading (slow-consumer and idle cuts, mostly).
    pub stalled_ended: u64,
    /// Of those, connections that had not had their `HELLO` (a TLS
    /// handshake past `--handshake-timeout`, `--max-clients`).
    pub before_hello: u64,
    /// Half-closed or `/quit` connections the server closed in time.
    pub closes_done: u64,
    /// Half-closed or `/quit` connections that heard nothing from the
    /// server for 10 s and were not closed: a server that forgets a
    /// connection.
    pub stalled_closes: u64,
    /// Non-TLS bytes or cut ClientHellos on the TLS port the server closed.
    pub raw_closed: u64,
    /// Of those, the ones still open 30 s later (closed by the client).
    pub raw_open: u64,
    /// Connections that could not be made (refused, timed out).
    pub connect_failed: u64,
    /// Connections given up on without a `HELLO`.
    pub no_hello: u64,
    /// Lines not sent because too much was still unsent.
    pub dropped_lines: u64,
    /// Bytes of chat lines the chaos clients read.
    pub bytes_read: u64,
    /// The first thing that went wrong that may point at the server.
    pub first_error: Option<String>,
}

impl Tally {
    /// Counts one action of `kind`.
    pub fn act(&mut self, kind: Kind) {
        self.actions[kind as usize] += 1;
    }

    /// All actions so far.
    pub fn total(&self) -> u64 {
        self.actions.iter().sum()
    }

    /// Counts an `ERR` line (its text after `ERR `).
    pub fn err(&mut self, rest: &[u8]) {
        let code = rest.split(|&b| b == b' ').next().unwrap_or_default();
        let i = ERR_CODES
            .iter()
            .position(|c| c.as_bytes() == code)
            .unwrap_or(ERR_CODES.len());
        self.errs[i] += 1;
    }

    /// Remembers `why` if nothing went wrong before.
    pub fn note(&mut self, why: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(why());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_own_slot() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i, "{}", k.name());
        }
    }

    #[test]
    fn err_codes_are_counted_by_name() {
        let mut t = Tally::default();
        t.err(b"slow-consumer");
        t.err(b"line-too-long extra words");
        t.err(b"made-up");
        assert_eq!(t.errs[9], 1);
        assert_eq!(t.errs[0], 1);
        assert_eq!(t.errs[ERR_CODES.len()], 1);
    }
}
