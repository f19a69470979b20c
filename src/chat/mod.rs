//! Chat (PROTOCOL.md §2): clients talk to each other in rooms.
//!
//! - [`command`]: one line → one [`command::Command`] (pure).
//! - [`router`]: nicks, rooms and who receives what, over slab keys (pure);
//!   nicks reserved by client certificates live in `reserved.rs`, `JOIN`
//!   and `QUIT` notices batched in `notices.rs`.
//! - [`session`]: per-connection framing and deadlines, glued to the router.

pub mod command;
mod commands;
mod notices;
mod reserved;
pub mod router;
pub mod session;

pub use session::{Chat, Departure, Expiry, Limits};

/// Every `ERR` code of PROTOCOL.md §2, in its order. `slow-consumer`,
/// `server-full` and `server-shutdown` come from the reactor (a cut, a
/// refusal, a shutdown); the rest from the chat service.
pub const ERR_CODES: [&str; 13] = [
    "line-too-long",
    "bad-utf8",
    "unknown-command",
    "bad-args",
    "bad-nick",
    "nick-in-use",
    "bad-room",
    "no-such-nick",
    "line-timeout",
    "slow-consumer",
    "idle-timeout",
    "server-full",
    "server-shutdown",
];

#[cfg(test)]
mod tests;

/// The chat tests' outbox: a test's recorder implements [`Record`] and is
/// an [`router::Outbox`] whose lines are `Rc<[u8]>` (a block of held
/// notices arrives as one).
#[cfg(test)]
mod record {
    use std::rc::Rc;

    use super::router::Outbox;

    pub(crate) trait Record {
        /// `line` (or a block of lines) delivered to `to`.
        fn record(&mut self, to: usize, line: &Rc<[u8]>);
        /// `key` is to be closed once its output is sent.
        fn closed(&mut self, _key: usize) {}
    }

    impl<R: Record> Outbox for R {
        type Line = Rc<[u8]>;
        fn post(&mut self, line: &[u8], _many: bool) -> Rc<[u8]> {
            Rc::from(line)
        }
        fn suffix(&self, line: &Rc<[u8]>, skip: usize) -> Rc<[u8]> {
            Rc::from(&line[skip..])
        }
        fn deliver(&mut self, to: usize, line: &Rc<[u8]>) {
            self.record(to, line);
        }
        fn close_after_flush(&mut self, key: usize) {
            self.closed(key);
        }
    }
}
