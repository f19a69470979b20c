//! edgechat: a single-threaded, edge-triggered epoll server, written on the
//! syscalls, that reads in the order of the C socket tutorial.
//!
//! A tour of the layout, in the order a byte travels:
//!
//! - [`sys`]: the only place with `unsafe`. [`sys::socket`] is `socket` →
//!   `setsockopt` → `bind` → `listen` → `accept4`, and `connect` for
//!   clients; [`sys::epoll`] owns the epoll fd and names the event bits;
//!   [`sys::signal`] turns signals into readable events (`signalfd`);
//!   [`sys::limits`] raises `RLIMIT_NOFILE` and keeps the reserve fd;
//!   [`sys::term`] is the client's raw mode on a terminal.
//! - [`reactor`]: the loop. `epoll_wait`, dispatch by token (slab key +
//!   generation), accept until `EAGAIN`, per-turn budgets and a ready list,
//!   graceful shutdown.
//! - [`conn`]: one connection: its socket, its transport, what it is owed,
//!   and the edge-triggered state bits.
//! - [`queue`]: bytes owed to one client, owned or shared between
//!   recipients, flushed with one `sendmsg` of many buffers.
//! - [`framing`], [`chat`]: bytes → lines; commands, rooms and deliveries
//!   (pure, no I/O).
//! - [`transport`]: plain TCP or TLS (rustls) behind one interface, so the
//!   services never know which a client speaks; certificates, mTLS nicks,
//!   and the client-side TLS pieces.
//! - [`echo`]: RFC 862 over TCP and UDP; [`udp`]: the datagrams UDP echo
//!   will not answer (service source ports, oversize, over the per-source
//!   rate), and their counters.
//! - [`client`]: `edgechat client`, the other half of the tutorial; on a
//!   terminal, a chat client whose typed line incoming lines never split.
//! - [`bench`]: `edgechat bench`, the load generator.
//! - [`config`], [`error`], [`logger`]: the command line, errors that name
//!   what failed, and timestamped log lines.
//! - [`lifecycle`]: `serve` from start to exit: daemon(7) steps
//!   ([`sys::daemon`]), pidfile ([`sys::pidfile`]), readiness, systemd
//!   notifications ([`sys::notify`]); [`stop`]: `edgechat stop`.
#![deny(unsafe_code)]

pub mod addr;
pub mod bench;
pub mod chat;
pub mod client;
pub mod config;
pub mod conn;
pub mod echo;
pub mod error;
pub mod framing;
pub mod lifecycle;
pub mod logger;
pub mod queue;
pub mod rate;
pub mod reactor;
pub mod source;
pub mod stop;
pub mod sys;
pub mod transport;
pub mod udp;

use config::{Config, ServeArgs};
use error::Result;

/// `edgechat serve`: bind every listener, then run the loop until shutdown.
pub fn serve(args: &ServeArgs) -> Result<()> {
    logger::init(args.log_level.into());
    let cfg = Config::from_args(args)?;
    if let Some(why) = &cfg.tls_skipped {
        log::warn!("{why}");
    }
    lifecycle::run(cfg)
}
