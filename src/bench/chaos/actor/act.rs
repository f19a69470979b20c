//! What a chaos client does when its timer fires: connecting (and the
//! connection's first moments), and each action of a connected client.

use std::os::fd::AsFd;

use super::{
    Actor, Ctx, Live, Slot, State, Via, CLOSE_LIMIT, CONNECT_LIMIT, LIVE, RCVBUF, SLOW_EVERY,
};
use crate::bench::chaos::payload;
use crate::bench::chaos::tally::Kind;
use crate::bench::lineconn::LineConn;
use crate::sys::epoll::{self, Event};
use crate::sys::socket;

impl Actor {
    /// Starts a connection: plain, or (a third of the time, when there is
    /// a TLS listener) TLS, with one in ten of those bytes that are not
    /// TLS and one in ten a ClientHello cut short.
    pub(super) fn connect(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        let (via, kind) = match ctx.tls {
            Some(_) if self.rng.chance(1, 3) => match self.rng.below(10) {
                0 => (Via::Raw(true), Kind::TlsGarbage),
                1 => (Via::Raw(false), Kind::TlsTruncated),
                _ => (Via::Tls, Kind::ConnectTls),
            },
            _ => (Via::Plain, Kind::Connect),
        };
        ctx.tally.act(kind);
        let addr = match (&ctx.tls, via) {
            (Some(port), Via::Tls | Via::Raw(_)) => port.tls.addr,
            _ => ctx.plain.addr,
        };
        let fd = match socket::connect_tcp_nonblocking(addr, Some(RCVBUF)) {
            Ok(fd) => fd,
            Err(e) => {
                ctx.tally.connect_failed += 1;
                ctx.tally.note(|| format!("connect {addr}: {e}"));
                return self.off(now);
            }
        };
        self.gen = self.gen.wrapping_add(1) & 0x7fff_ffff;
        if let Err(e) = ctx
            .epoll
            .add(fd.as_fd(), epoll::interest_all(), self.token())
        {
            ctx.tally.note(|| format!("epoll_ctl: {e}"));
            return self.off(now);
        }
        self.slot = Slot::Connecting {
            fd,
            via,
            since: now,
        };
        self.wake = now + CONNECT_LIMIT;
    }

    /// The socket turned writable: the connection is made (or refused).
    /// The same event may say the server has already sent its last bytes
    /// and FIN (`--max-clients`): it is noted, or the short read of those
    /// bytes would pass for "drained" and the FIN, which brings no new
    /// edge, would never be read.
    pub(super) fn connected(&mut self, ctx: &mut Ctx, ev: &Event) {
        let now = ctx.now;
        let Slot::Connecting { fd, via, .. } = std::mem::replace(&mut self.slot, Slot::Off) else {
            return;
        };
        let failed = match socket::take_error(fd.as_fd()) {
            Ok(None) => None,
            Ok(Some(e)) | Err(e) => Some(e),
        };
        if let Some(e) = failed {
            ctx.tally.connect_failed += 1;
            ctx.tally.note(|| format!("connect ({via:?}): {e}"));
            return self.off(now);
        }
        let dialer = match (&ctx.tls, via) {
            (Some(port), Via::Tls) => &port.tls,
            (Some(port), Via::Raw(_)) => &port.raw,
            _ => &ctx.plain,
        };
        let mut link = match dialer.wrap(fd) {
            Ok(link) => link,
            // The server may end a connection at once; that is its right.
            Err(_) => {
                ctx.tally.server_closed += 1;
                return self.off(now);
            }
        };
        link.note(ev);
        let mut live = Live {
            conn: LineConn::new(link),
            via,
            state: State::Open,
            opened: now,
            out: Vec::new(),
            sent: 0,
            half_closed: false,
            lines: 0,
            stalled: false,
        };
        if matches!(via, Via::Plain | Via::Tls) && self.rng.chance(1, 25) {
            // Gone before the server's first line can reach it.
            ctx.tally.act(Kind::Reset);
            let _ = socket::set_linger_zero(live.conn.link.fd.as_fd());
            return self.off(now);
        }
        match via {
            Via::Raw(true) => payload::tls_garbage(&mut live.out, &mut self.rng),
            Via::Raw(false) => {
                let hello = &ctx.client_hello;
                let cut = self.rng.range(0, hello.len() as u64) as usize;
                live.out.extend_from_slice(&hello[..cut]);
            }
            Via::Plain | Via::Tls => {}
        }
        if let Via::Raw(_) = via {
            live.state = State::Raw(now);
            self.wake = match self.rng.chance(1, 2) {
                true => now + self.rng.millis(0, 1500),
                false => now + super::RAW_LIMIT,
            };
        } else {
            self.wake = now + std::time::Duration::from_millis(200);
        }
        self.slot = Slot::On(Box::new(live));
        self.service(ctx);
    }

    /// One action of a connected client that has had its `HELLO`.
    pub(super) fn act(&mut self, ctx: &mut Ctx) {
        let now = ctx.now;
        let weights = LIVE.map(|(_, w)| w);
        let kind = LIVE[self.rng.weighted(&weights)].0;
        ctx.tally.act(kind);
        let mut next = self.gap(now);
        let Slot::On(live) = &mut self.slot else {
            return;
        };
        let (rng, t) = (&mut self.rng, &mut ctx.tally);
        let (conns, checkers) = (ctx.conns, ctx.checkers);
        match kind {
            Kind::Talk => live.push(t, |out| payload::talk(out, rng)),
            Kind::Dm => live.push(t, |out| payload::dm(out, rng, conns, checkers)),
            Kind::Nick => live.push(t, |out| {
                let nick = payload::nick(rng, conns);
                out.extend_from_slice(format!("/nick {nick}\n").as_bytes());
            }),
            Kind::Join => live.push(t, |out| payload::join(out, rng)),
            Kind::Query => live.push(t, |out| payload::query(out, rng)),
            Kind::Burst => live.push(t, |out| {
                for _ in 0..rng.size(10, 100) {
                    payload::talk(out, rng);
                }
            }),
            Kind::BadUtf8 => live.push(t, |out| payload::bad_utf8(out, rng)),
            Kind::Control => live.push(t, |out| payload::control(out, rng)),
            Kind::LongLine => live.push(t, |out| payload::long_line(out, rng)),
            Kind::BadCommand => live.push(t, |out| payload::bad_command(out, rng)),
            Kind::SlowRead => {
                live.state = State::Slow(now + rng.millis(1000, 5000));
                live.stalled = true;
                next = now + SLOW_EVERY;
            }
            Kind::StopRead => {
                if rng.chance(1, 2) {
                    // The busiest room: the server's queue for it fills soonest.
                    let join = format!("/join {}\n", crate::bench::chaos::checker::ROOM);
                    live.push(t, |out| out.extend_from_slice(join.as_bytes()));
                }
                let until = now + rng.millis(2000, 15_000);
                let talking = rng.chance(1, 2);
                live.state = State::Deaf { until, talking };
                live.stalled = true;
                next = if talking {
                    now + rng.millis(300, 700)
                } else {
                    until
                };
            }
            Kind::Slowloris => {
                live.push(t, |out| out.extend_from_slice(b"never finished "));
                live.state = State::Slowloris(now + rng.millis(1000, 6000));
                next = now + rng.millis(200, 700);
            }
            Kind::HalfClose => {
                let _ = live.flush();
                live.conn.link.close_notify();
                let _ = socket::shutdown_write(live.conn.link.fd.as_fd());
                live.half_closed = true;
                live.state = State::Closing {
                    since: now,
                    lines: live.lines,
                };
                next = now + CLOSE_LIMIT;
            }
            Kind::Quit => {
                // Never dropped, and not queued behind a flood still unsent:
                // the server gets it and must close.
                live.drop_backlog();
                live.out.extend_from_slice(b"/quit chaos\n");
                if rng.chance(1, 2) {
                    // The server must ignore what follows `/quit`.
                    live.push(t, |out| out.extend_from_slice(b"after quit\n/nick late\n"));
                }
                live.state = State::Closing {
                    since: now,
                    lines: live.lines,
                };
                next = now + CLOSE_LIMIT;
            }
            Kind::Reset => {
                let _ = socket::set_linger_zero(live.conn.link.fd.as_fd());
                return self.off(now);
            }
            Kind::Close => return self.off(now),
            Kind::Connect | Kind::ConnectTls | Kind::TlsGarbage | Kind::TlsTruncated => {}
        }
        self.wake = next;
        let outcome = live.flush().map(|()| true);
        self.settle(ctx, outcome);
    }
}
