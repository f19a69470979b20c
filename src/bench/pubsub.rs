//! `--proto`: the chat load against a pub/sub server instead of a chat
//! room. Which protocol a connection speaks, what it says first, what it
//! makes of each frame it reads, and how a sender frames its lines.
//!
//! - `edgechat`: a room of our chat server; every client reads `HELLO`
//!   first, senders are room members too (they drop what they hear).
//! - `redis` (RESP2, [`super::resp`]): a receiver sends `SUBSCRIBE
//!   <channel>` and is ready at the confirmation; a sender sends `PING` and
//!   is ready at `+PONG`, then only publishes (`PUBLISH <channel> <line>`)
//!   and reads the integer replies, dropping them.
//! - `nats` ([`super::nats`]): every client sends `CONNECT` (no `+OK`s, no
//!   echo of its own messages); a receiver then `SUB <subject> 1`; then
//!   `PING`, and it is ready at `PONG` (the server has processed the `SUB`).
//!   Senders only publish (`PUB <subject> <len>`). A server `PING` is
//!   answered with `PONG`.
//!
//! In every protocol the payload is the chat line itself ([`chatline`]),
//! `\n` included, so a delivery is checked and timed the same way. A
//! server's error reply (`-ERR ...`, `-NOAUTH ...`) fails the connection
//! with its text.

use std::io;

use clap::ValueEnum;

use super::chatline;
use super::deframe::Step;
use super::{nats, resp};

/// The wire protocol of the chat load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Proto {
    /// Our chat server: one room, lines relayed as `MSG <nick> <text>`.
    #[default]
    Edgechat,
    /// Redis pub/sub (RESP2): `SUBSCRIBE` and `PUBLISH` on one channel.
    Redis,
    /// NATS: `SUB` and `PUB` on one subject.
    Nats,
}

/// What a connection does in the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Sender,
    Receiver,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Edgechat => "edgechat",
            Proto::Redis => "redis",
            Proto::Nats => "nats",
        }
    }

    /// What shows that a connection is ready, for an error message.
    pub fn ready_sign(self) -> &'static str {
        match self {
            Proto::Edgechat => "HELLO",
            Proto::Redis => "subscribe confirmation or +PONG",
            Proto::Nats => "PONG",
        }
    }

    /// The channel (subject) of this run: one per process, so two loads on
    /// one server do not see each other's lines.
    pub fn channel(self) -> Vec<u8> {
        format!("edgechat.bench.{}", std::process::id()).into_bytes()
    }

    /// What a connection in `role` sends as soon as it is connected.
    pub fn greeting(self, role: Role, channel: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        match (self, role) {
            (Proto::Edgechat, _) => {}
            (Proto::Redis, Role::Receiver) => resp::subscribe(&mut out, channel),
            (Proto::Redis, Role::Sender) => resp::ping(&mut out),
            (Proto::Nats, role) => {
                out.extend_from_slice(nats::CONNECT);
                if role == Role::Receiver {
                    nats::sub(&mut out, channel, 1);
                }
                nats::ping(&mut out);
            }
        }
        out
    }

    /// Appends sender `sender`'s line `seq` of `size` bytes (`size` at
    /// least [`chatline::MIN_SIZE`]), framed for this protocol.
    pub fn encode_line(
        self,
        out: &mut Vec<u8>,
        channel: &[u8],
        sender: usize,
        seq: u64,
        ts_ns: u64,
        size: usize,
    ) {
        match self {
            Proto::Edgechat => chatline::encode(out, sender, seq, ts_ns, size),
            Proto::Redis => {
                resp::publish_head(out, channel, size);
                let start = out.len();
                chatline::encode(out, sender, seq, ts_ns, size);
                debug_assert_eq!(out.len() - start, size);
                resp::publish_tail(out);
            }
            Proto::Nats => {
                nats::pub_head(out, channel, size);
                let start = out.len();
                chatline::encode(out, sender, seq, ts_ns, size);
                debug_assert_eq!(out.len() - start, size);
                nats::pub_tail(out);
            }
        }
    }

    /// Bytes of one framed line of `size` bytes.
    pub fn framed_len(self, channel: &[u8], size: usize) -> usize {
        let mut out = Vec::with_capacity(size + 64);
        self.encode_line(&mut out, channel, 0, 0, 0, size);
        out.len()
    }

    /// The longest frame a connection keeps while it is cut across reads:
    /// a line of `size` bytes with 64 KiB to spare for its header (and for
    /// a NATS server's `INFO`).
    pub fn max_frame(self, size: usize) -> usize {
        size.saturating_add(64 * 1024)
    }

    /// How a receiver reads a payload: a relayed chat line, or the sender's
    /// text itself.
    pub fn relayed(self) -> fn(&[u8]) -> chatline::Relayed {
        match self {
            Proto::Edgechat => chatline::parse,
            Proto::Redis | Proto::Nats => chatline::parse_text,
        }
    }
}

/// What one frame from the server does to its connection.
pub struct Effects<'a, F> {
    /// Set once the connection is ready.
    pub ready: &'a mut bool,
    /// Bytes the connection owes the server (a `PONG`).
    pub owed: &'a mut Vec<u8>,
    /// Takes every message payload.
    pub payload: &'a mut F,
}

fn server_error(proto: Proto, text: &[u8]) -> io::Error {
    io::Error::other(format!(
        "the {} server answered with an error: {}",
        proto.name(),
        String::from_utf8_lossy(text)
    ))
}

fn malformed(proto: Proto, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not the {} protocol: {why}", proto.name()),
    )
}

/// Reads one RESP reply at the start of `buf`.
pub fn redis_frame<F: FnMut(&[u8])>(buf: &[u8], fx: Effects<'_, F>) -> io::Result<Step> {
    let (reply, n) = match resp::parse(buf) {
        resp::Parsed::Done(reply, n) => (reply, n),
        resp::Parsed::Need(n) => return Ok(Step::Need(n)),
        resp::Parsed::Bad(why) => return Err(malformed(Proto::Redis, why)),
    };
    match reply {
        resp::Reply::Message { payload, .. } => (fx.payload)(payload),
        resp::Reply::Subscribed { .. } => *fx.ready = true,
        resp::Reply::Simple(s) if s.eq_ignore_ascii_case(b"PONG") => *fx.ready = true,
        resp::Reply::Error(text) => return Err(server_error(Proto::Redis, text)),
        resp::Reply::Simple(_) | resp::Reply::Integer(_) | resp::Reply::Other => {}
    }
    Ok(Step::Took(n))
}

/// Reads one NATS operation at the start of `buf`.
pub fn nats_frame<F: FnMut(&[u8])>(buf: &[u8], fx: Effects<'_, F>) -> io::Result<Step> {
    let (op, n) = match nats::parse(buf) {
        nats::Parsed::Done(op, n) => (op, n),
        nats::Parsed::Need(n) => return Ok(Step::Need(n)),
        nats::Parsed::Bad(why) => return Err(malformed(Proto::Nats, why)),
    };
    match op {
        nats::Op::Msg { payload, .. } => (fx.payload)(payload),
        nats::Op::Pong => *fx.ready = true,
        nats::Op::Ping => nats::pong(fx.owed),
        nats::Op::Err(text) => return Err(server_error(Proto::Nats, text)),
        nats::Op::Info | nats::Op::Ok => {}
    }
    Ok(Step::Took(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatline::Relayed;

    #[test]
    fn framed_lines_carry_the_chat_line_as_payload() {
        let ch = b"edgechat.bench.1";
        for proto in [Proto::Redis, Proto::Nats] {
            let mut out = Vec::new();
            proto.encode_line(&mut out, ch, 3, 9, 77, 64);
            assert_eq!(out.len(), proto.framed_len(ch, 64), "{proto:?}");
            let mut got = Vec::new();
            let (mut ready, mut owed) = (false, Vec::new());
            let mut take = |p: &[u8]| got.push(proto.relayed()(p));
            // What a subscriber would get for it.
            let payload = &out[out.len() - 66..out.len() - 2];
            let mut push = match proto {
                Proto::Redis => {
                    b"*3\r\n$7\r\nmessage\r\n$16\r\nedgechat.bench.1\r\n$64\r\n".to_vec()
                }
                _ => b"MSG edgechat.bench.1 1 64\r\n".to_vec(),
            };
            push.extend_from_slice(payload);
            push.extend_from_slice(b"\r\n");
            let fx = Effects {
                ready: &mut ready,
                owed: &mut owed,
                payload: &mut take,
            };
            let step = match proto {
                Proto::Redis => redis_frame(&push, fx),
                _ => nats_frame(&push, fx),
            };
            assert_eq!(step.unwrap(), Step::Took(push.len()), "{proto:?}");
            let msg = Relayed::Msg {
                sender: 3,
                seq: 9,
                ts_ns: 77,
            };
            assert_eq!(
                got,
                [msg],
                "{proto:?}: {:?}",
                String::from_utf8_lossy(&push)
            );
        }
    }

    #[test]
    fn readiness_pings_and_errors() {
        let (mut ready, mut owed) = (false, Vec::new());
        let mut fx = |buf: &[u8], redis: bool| {
            let fx = Effects {
                ready: &mut ready,
                owed: &mut owed,
                payload: &mut |_: &[u8]| {},
            };
            if redis {
                redis_frame(buf, fx)
            } else {
                nats_frame(buf, fx)
            }
        };
        assert_eq!(fx(b"PING\r\n", false).unwrap(), Step::Took(6));
        let err = fx(b"-ERR 'Authorization Violation'\r\n", false).unwrap_err();
        assert!(err.to_string().contains("Authorization Violation"), "{err}");
        let err = fx(b"-NOAUTH Authentication required.\r\n", true).unwrap_err();
        assert!(err.to_string().contains("NOAUTH"), "{err}");
        assert!(fx(b"HELLO\r\n", false).is_err());
        assert_eq!(fx(b"+PONG\r\n", true).unwrap(), Step::Took(7));
        assert!(ready);
        assert_eq!(owed, b"PONG\r\n");
    }

    #[test]
    fn greetings() {
        let g = |p: Proto, r| String::from_utf8(p.greeting(r, b"c")).unwrap();
        assert_eq!(g(Proto::Edgechat, Role::Receiver), "");
        assert_eq!(
            g(Proto::Redis, Role::Receiver),
            "*2\r\n$9\r\nSUBSCRIBE\r\n$1\r\nc\r\n"
        );
        assert_eq!(g(Proto::Redis, Role::Sender), "*1\r\n$4\r\nPING\r\n");
        let nats_rx = g(Proto::Nats, Role::Receiver);
        assert!(nats_rx.starts_with("CONNECT {"), "{nats_rx}");
        assert!(nats_rx.contains("\"echo\":false"), "{nats_rx}");
        assert!(nats_rx.ends_with("\r\nSUB c 1\r\nPING\r\n"), "{nats_rx}");
        assert!(g(Proto::Nats, Role::Sender).ends_with("}\r\nPING\r\n"));
    }
}
